"""`ib.connections`: the registry's setup flow (`ibkr_admin.connections.*`), typed.

The four steps of the user's guide, in order: `create` (environment; gateway and username), `verify`
(gateway reachable, authenticated, accounts read back), `settings` (per account: options level, live
enablement), `acknowledge` (the disclosures the environment needs). A connection trades once verified
and acknowledged. Every call acts for `user_id`, the connection's owner (`Forbidden` otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ibkr_client.errors import validated
from ibkr_contract.connections import (
    AccountSettings,
    AcknowledgeConnectionRequest,
    ConnectionList,
    ConnectionRef,
    ConnectionView,
    CreateConnectionRequest,
    DeleteResult,
    GatewaySettings,
    ListConnectionsRequest,
    RotateKeyRequest,
    RotateKeyResult,
    SettingsRequest,
    UpdateConnectionRequest,
    VerifyResult,
)

if TYPE_CHECKING:
    from ibkr_client.client import IbkrClient

#: Verification reads the gateway through the bridge (several calls under the gateway's pacing).
VERIFY_TIMEOUT_S = 30.0


class Connections:
    """The connection registry: set up, verify, configure and remove connections."""

    def __init__(self, client: IbkrClient) -> None:
        self.client = client

    async def create(self, connection: str, *, user_id: str, environment: Literal["paper", "live"],
                     host: str, port: int, username: str, ssl: bool = True, ca_pem: str | None = None,
                     timeout: float | None = None) -> ConnectionView:
        """Register a connection (steps 1-2); it starts unverified and disabled."""
        gateway: dict[str, Any] = {"host": host, "port": port, "ssl": ssl, "ca_pem": ca_pem}
        body = validated(CreateConnectionRequest, {"user_id": user_id, "connection": connection,
                                                   "environment": environment, "gateway": gateway,
                                                   "username": username})
        return await self.client.admin_call("connections.create", body, ConnectionView, timeout=timeout)

    async def verify(self, connection: str, *, user_id: str, timeout: float | None = None) -> VerifyResult:
        """Step 3: check the gateway through the bridge and read the accounts back."""
        body = validated(ConnectionRef, {"user_id": user_id, "connection": connection})
        return await self.client.admin_call("connections.verify", body, VerifyResult,
                                            timeout=timeout or max(self.client.timeout, VERIFY_TIMEOUT_S))

    async def settings(self, connection: str, *, user_id: str, accounts: list[AccountSettings | dict[str, Any]],
                       timeout: float | None = None) -> ConnectionView:
        """Set per-account settings (options level 0-4, live enablement) of verified accounts."""
        body = validated(SettingsRequest, {"user_id": user_id, "connection": connection, "accounts": [
            a.model_dump() if isinstance(a, AccountSettings) else a for a in accounts]})
        return await self.client.admin_call("connections.settings", body, ConnectionView, timeout=timeout)

    async def acknowledge(self, connection: str, *, user_id: str, disclosures: list[str],
                          timeout: float | None = None) -> ConnectionView:
        """Step 4: acknowledge disclosures; a verified connection with nothing missing becomes enabled."""
        body = validated(AcknowledgeConnectionRequest, {"user_id": user_id, "connection": connection,
                                                        "disclosures": disclosures})
        return await self.client.admin_call("connections.acknowledge", body, ConnectionView, timeout=timeout)

    async def list(self, *, user_id: str, timeout: float | None = None) -> list[ConnectionView]:
        """The connections `user_id` owns."""
        body = validated(ListConnectionsRequest, {"user_id": user_id})
        result = await self.client.admin_call("connections.list", body, ConnectionList, timeout=timeout)
        return result.connections

    async def get(self, connection: str, *, user_id: str, timeout: float | None = None) -> ConnectionView:
        """One connection of its owner."""
        body = validated(ConnectionRef, {"user_id": user_id, "connection": connection})
        return await self.client.admin_call("connections.get", body, ConnectionView, timeout=timeout)

    async def update(self, connection: str, *, user_id: str, gateway: GatewaySettings | dict[str, Any] | None = None,
                     username: str | None = None, timeout: float | None = None) -> ConnectionView:
        """Change the gateway or username; the connection must be verified again."""
        fields: dict[str, Any] = {"user_id": user_id, "connection": connection}
        if gateway is not None:
            fields["gateway"] = gateway.model_dump() if isinstance(gateway, GatewaySettings) else gateway
        if username is not None:
            fields["username"] = username
        body = validated(UpdateConnectionRequest, fields)
        return await self.client.admin_call("connections.update", body, ConnectionView, timeout=timeout)

    async def delete(self, connection: str, *, user_id: str, timeout: float | None = None) -> DeleteResult:
        """Remove a connection; the services stop serving it."""
        body = validated(ConnectionRef, {"user_id": user_id, "connection": connection})
        return await self.client.admin_call("connections.delete", body, DeleteResult, timeout=timeout)

    async def rotate_key(self, *, timeout: float | None = None) -> RotateKeyResult:
        """Re-encrypt every stored credential under the registry's current key (an operator's command)."""
        return await self.client.admin_call("connections.rotate_key", RotateKeyRequest(), RotateKeyResult,
                                            timeout=timeout or max(self.client.timeout, VERIFY_TIMEOUT_S))
