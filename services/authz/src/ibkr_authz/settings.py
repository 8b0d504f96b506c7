"""Settings of the authz service (environment variables, documented in services/authz/README.md)."""

from __future__ import annotations

from pathlib import Path

import nkeys
from pydantic import Field, SecretStr, field_validator, model_validator

from ibkr_common.settings import CommonSettings, env


class AuthzSettings(CommonSettings):
    """The auth callout's own variables on top of the common ones (NATS_URL names the callout's own user)."""

    authz_issuer_seed: SecretStr = Field(
        validation_alias=env("IBKR_AUTHZ_ISSUER_SEED"),
        description="NKey seed of the account key (`SA...`) that signs the user JWTs; its public key is the "
        "`issuer` of nats.conf's `auth_callout` block.",
    )
    authz_issuer: str = Field(
        "", validation_alias=env("IBKR_AUTHZ_ISSUER"), max_length=64,
        description="The public key (`A...`) nats.conf names as the callout's `issuer`; when set, authz refuses "
        "to start with a seed that does not match it (every person's login would fail otherwise).",
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
    authz_kick_nats_url: SecretStr = Field(
        SecretStr(""), validation_alias=env("IBKR_AUTHZ_KICK_NATS_URL"),
        description="NATS URL with the credentials of a system account user that may publish only "
        "`$SYS.REQ.SERVER.*.KICK` (deploy/nats.conf's `authz-kick`): authz closes a person's open NATS clients "
        "when the connections they own change, so they reconnect with the new grant. Empty: grants change only "
        "when the client reconnects or its user JWT expires (an hour).",
    )

    @field_validator("authz_issuer_seed")
    @classmethod
    def _account_seed(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("SA"):
            raise ValueError("must be an account NKey seed (starts with SA)")
        return value

    @model_validator(mode="after")
    def _issuer_matches_seed(self) -> AuthzSettings:
        if self.authz_issuer:
            try:
                public = nkeys.from_seed(self.authz_issuer_seed.get_secret_value().encode()).public_key.decode()
            except (nkeys.NkeysError, ValueError):
                raise ValueError("IBKR_AUTHZ_ISSUER_SEED is not a valid NKey seed") from None
            if public != self.authz_issuer:
                raise ValueError("IBKR_AUTHZ_ISSUER is not the public key of IBKR_AUTHZ_ISSUER_SEED")
        return self
