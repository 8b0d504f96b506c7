"""Connections as data: the registry's commands under `ibkr_admin.connections.*` and its events.

A connection is one Client Portal login (`<conn>` in `ibkr.<conn>.…`), owned by one user. The setup
follows the user's four steps: create it (environment; gateway and username), verify it (gateway
reachable, authenticated, accounts read back), set per-account settings, acknowledge the
disclosures its environment needs. A new connection is disabled; it trades once verified and
acknowledged. Its events are `ibkr.<conn>.events.connection.<kind>` (`CONNECTION_EVENTS`). The admin
root is outside `ibkr.<conn>`, so a connection may itself be called `admin`.

No username, password or key ever appears in a reply or an event: a view says only whether a
username is stored and under which key id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ibkr_contract.subjects import CONNECTION_EVENTS

__all__ = ["CONNECTION_EVENTS"]  # re-exported; the models follow

ADMIN_ROOT: Final = "ibkr_admin"

#: The registry's commands, by name under `ibkr_admin.`.
ADMIN_COMMANDS: Final = (
    "connections.create", "connections.verify", "connections.settings", "connections.acknowledge",
    "connections.list", "connections.get", "connections.update", "connections.delete",
    "connections.rotate_key", "connections.directory",
)


USER_ID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@:-]{1,64}$",
                description="The user the caller acts for; checked against the connection's owner.")
CONNECTION_ID = Field(pattern=r"^[a-z0-9-]{1,32}$", description="The connection id (`<conn>`).")
Environment = Literal["paper", "live"]
ConnectionState = Literal["unverified", "verified", "enabled", "disabled"]


class AdminSubjects:
    """The subjects of the connection registry (`ibkr_admin.connections.<verb>`)."""

    root: Final = ADMIN_ROOT

    def command(self, name: str) -> str:
        """The subject of a registry command by name (`connections.create`)."""
        if name not in ADMIN_COMMANDS:
            raise ValueError(f"unknown admin command {name!r}")
        return f"{ADMIN_ROOT}.{name}"

    def status(self, service: str) -> str:
        """`ibkr_admin.status.<service>`: a service not bound to one connection answers that it runs."""
        return f"{ADMIN_ROOT}.status.{service}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GatewaySettings(_Strict):
    """Where the connection's Client Portal Gateway listens, and how to trust it."""

    host: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\[\]-]+$")
    port: int = Field(ge=1, le=65535)
    ssl: bool = True
    ca_pem: str | None = Field(
        None, max_length=64_000,
        description="PEM certificate(s) to verify the gateway with; unset accepts its self-signed certificate.")

    @field_validator("ca_pem")
    @classmethod
    def _looks_like_pem(cls, value: str | None) -> str | None:
        if value is not None and "-----BEGIN CERTIFICATE-----" not in value:
            raise ValueError("must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
        return value

    @property
    def url(self) -> str:
        """Base URL of the gateway, without `/v1/api`."""
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"


class AccountSettings(_Strict):
    """Per-account settings: one login may hold several accounts."""

    account_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    options_level: int = Field(0, ge=0, le=4, description="0 (no options) to 4, as approved by IBKR.")
    live_enabled: bool = Field(False, description="Live trading switched on for this account (live only).")


class ConnectionRef(_Strict):
    """Names one connection for the user who asks: `{user_id, connection}`."""

    user_id: str = USER_ID
    connection: str = CONNECTION_ID


class CreateConnectionRequest(ConnectionRef):
    """Steps 1 and 2 of the setup: environment, gateway and username. The connection starts disabled."""

    environment: Environment
    gateway: GatewaySettings
    username: str = Field(min_length=1, max_length=64, description="The IBKR username; stored encrypted.")


class UpdateConnectionRequest(ConnectionRef):
    """Change the gateway or username; either change needs a new verification (the connection is disabled).

    `enabled: false` switches a connection off (state `disabled`); `enabled: true` switches it back on,
    which needs it verified with nothing left to acknowledge."""

    gateway: GatewaySettings | None = None
    username: str | None = Field(None, min_length=1, max_length=64)
    enabled: bool | None = None


class SettingsRequest(ConnectionRef):
    """Set the per-account settings of verified accounts."""

    accounts: list[AccountSettings] = Field(min_length=1, max_length=64)


class AcknowledgeConnectionRequest(ConnectionRef):
    """Step 4: acknowledge the disclosures the connection's environment needs."""

    disclosures: list[str] = Field(min_length=1, max_length=32)


class ListConnectionsRequest(_Strict):
    """The connections a user owns."""

    user_id: str = USER_ID


class DirectoryRequest(_Strict):
    """Internal: every connection, for the services that serve them (`{}`)."""


class RotateKeyRequest(_Strict):
    """Re-encrypt every stored credential under the current key (`{}`); earlier keys must still be configured."""


class CheckResult(BaseModel):
    """One step of a verification."""

    check: Literal["reachable", "authenticated", "environment", "username", "accounts", "summaries", "disclosures"]
    ok: bool
    detail: str = ""
    skipped: bool = Field(False, description="The check could not be made (`detail` says why); it does not fail "
                                             "the verification.")


class AccountView(BaseModel):
    """A verified account with its settings and what the gateway read back."""

    account_id: str
    title: str | None = None
    account_type: str | None = None
    currency: str | None = None
    net_liquidation: str | None = Field(None, description="Plain decimal string, as read at verification.")
    options_level: int = 0
    live_enabled: bool = False


class ConnectionView(BaseModel):
    """A connection as the registry shows it: never its username or any secret."""

    connection: str
    user_id: str
    environment: Environment
    gateway: GatewaySettings
    state: ConnectionState = Field(description="unverified, verified (not yet acknowledged), enabled, disabled.")
    enabled: bool = Field(description="Whether orders may be placed on it.")
    bootstrap: bool = Field(False, description="The environment's connection (IBKR_CONNECTION); not editable.")
    username_set: bool = False
    key_id: str | None = Field(None, description="Id of the key its credentials are encrypted under.")
    accounts: list[AccountView] = []
    acknowledged: list[str] = []
    missing_disclosures: list[str] = []
    verified_at: datetime | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class VerifyResult(BaseModel):
    """The outcome of `connections.verify`: each check, and the connection afterwards."""

    ok: bool = Field(description="Every check of the gateway passed: the connection is verified. `disclosures` is "
                                 "reported but does not count: what is still to acknowledge keeps it disabled.")
    checks: list[CheckResult]
    connection: ConnectionView


class ConnectionList(BaseModel):
    """`connections.list` and `connections.directory`."""

    connections: list[ConnectionView]


class DeleteResult(BaseModel):
    """`connections.delete`: the connection is gone; its services drop it."""

    connection: str
    deleted: bool


class RotateKeyResult(BaseModel):
    """What a rotation did."""

    key_id: str = Field(description="The current key every row is now under.")
    rows: int
    rotated: int
    already_current: int
    failed: list[dict[str, str]] = Field(
        [], description="`{connection, user_id, error}` of rows that could not be decrypted.")


class ConnectionPayload(BaseModel):
    """Payload of `connection.*` events: the connection's view after the change (no secrets)."""

    connection: ConnectionView
    changes: list[str] = Field([], description="Names of the fields that changed (`gateway`, `accounts`, ...).")
