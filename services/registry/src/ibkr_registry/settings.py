"""Settings of the registry (environment variables, on top of the common ones)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ibkr_common.crypto import CredentialCipher
from ibkr_common.settings import DatabaseServiceSettings, env
from ibkr_common.subjects import USER_JWT_LIFETIME_S


class RegistrySettings(DatabaseServiceSettings):
    """The registry's own variables. `IBKR_ENCRYPTION_KEY` is required here (and given to no other service);
    `IBKR_OLD_ENCRYPTION_KEYS` lists earlier keys while `connections.rotate_key` moves rows off them."""

    bridge_timeout_s: float = Field(
        10.0, validation_alias=env("IBKR_REGISTRY_BRIDGE_TIMEOUT_S"), gt=0, le=120,
        description="How long one gateway-bridge read of a verification may take (the account reads are "
        "paced by the gateway: /portfolio/accounts once per 5 s).",
    )
    compliance_timeout_s: float = Field(
        5.0, validation_alias=env("IBKR_REGISTRY_COMPLIANCE_TIMEOUT_S"), gt=0, le=60,
        description="How long compliance's compliance.acknowledge / compliance.status may take.",
    )

    quarantine_s: float = Field(
        7200.0, validation_alias=env("IBKR_REGISTRY_QUARANTINE_S"), ge=USER_JWT_LIFETIME_S,
        description="How long a deleted connection id stays reserved for its last owner (seconds): another user "
        "may register it only after this, so a client still holding a grant to it (user JWTs last "
        f"{USER_JWT_LIFETIME_S} s) cannot reach the new owner's subjects. At least {USER_JWT_LIFETIME_S}.",
    )

    encryption_key: SecretStr = Field(  # type: ignore[assignment]  # required here, optional elsewhere
        validation_alias=env("IBKR_ENCRYPTION_KEY", "VITE_ENCRYPTION_KEY"),
        description="Passphrase (at least 32 characters) from which the credential key is derived; required.",
    )

    def cipher(self) -> CredentialCipher:
        """The cipher of the current key, with the earlier keys for decryption."""
        old = [key.strip() for key in self.old_encryption_keys.split(",") if key.strip()]
        return CredentialCipher(self.encryption_key.get_secret_value(), old)
