"""Settings of the authz service (environment variables, documented in services/authz/README.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from ibkr_common.settings import CommonSettings, env


class AuthzSettings(CommonSettings):
    """The auth callout's own variables on top of the common ones (NATS_URL names the callout's own user)."""

    authz_issuer_seed: SecretStr = Field(
        validation_alias=env("IBKR_AUTHZ_ISSUER_SEED"),
        description="NKey seed of the account key (`SA...`) that signs the user JWTs; its public key is the "
        "`issuer` of nats.conf's `auth_callout` block.",
    )
    authz_account: str = Field(
        "$G", validation_alias=env("IBKR_AUTHZ_ACCOUNT"), min_length=1, max_length=64,
        description="The NATS account the users are placed in (`$G`, the global account, without accounts).",
    )
    authz_users_file: Path = Field(
        validation_alias=env("IBKR_AUTHZ_USERS_FILE"),
        description="JSON file `{\"users\": {\"<user_id>\": \"<scrypt hash>\"}}` of the people who may connect "
        "(`python -m ibkr_authz hash` makes a hash).",
    )

    @field_validator("authz_issuer_seed")
    @classmethod
    def _account_seed(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("SA"):
            raise ValueError("must be an account NKey seed (starts with SA)")
        return value
