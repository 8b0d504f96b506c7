"""The console's only way to the stack: `ibkr_client.IbkrClient`, one per connection, and what it reads.

Which connections a console user sees: those the registry lists for the owner the user acts for, plus the
bootstrap connection (IBKR_CONNECTION) when that owner is its owner (IBKR_USER_ID). Without a registry
running, the bootstrap connection alone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from ibkr_client import IbkrClient
from ibkr_client.errors import IbkrError
from ibkr_console.settings import ConsoleSettings
from ibkr_contract.connections import ConnectionView

log = logging.getLogger("ibkr_console.stack")
REGISTRY_TIMEOUT_S = 2.0
Environment = Literal["paper", "live"]


@dataclass(frozen=True)
class Conn:
    """A connection as the console shows it."""

    id: str
    environment: Environment
    state: str
    enabled: bool
    bootstrap: bool
    view: ConnectionView | None = None


class StackAccess:
    """IbkrClients by connection, over the stack's NATS."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.bootstrap = settings.connection
        self._clients: dict[str, IbkrClient] = {}
        self._lock = asyncio.Lock()
        self.registry_seen: bool | None = None

    async def client(self, conn: str | None = None, environment: Environment = "paper") -> IbkrClient:
        """The connected client of `conn` (default the bootstrap connection)."""
        conn = conn or self.bootstrap
        key = f"{conn}/{environment}"
        async with self._lock:
            ib = self._clients.get(key)
            if ib is None:
                ib = IbkrClient(self.settings.nats_url, connection=conn, environment=environment,
                                inbox_prefix=self.settings.nats_inbox_prefix, name=f"ibkr-console-{conn}")
                await ib.connect()
                self._clients[key] = ib
            return ib

    @property
    def connected(self) -> bool:
        for ib in self._clients.values():
            try:
                if ib.nats.is_connected:
                    return True
            except RuntimeError:  # not connected yet
                continue
        return False

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for ib in clients:
            await ib.close()

    async def connections(self, owner: str) -> list[Conn]:
        """The connections `owner` may see (see the module's docstring)."""
        ib = await self.client()
        found: list[Conn] = []
        try:
            views = await ib.connections.list(user_id=owner, timeout=REGISTRY_TIMEOUT_S)
            self.registry_seen = True
        except IbkrError as exc:  # no registry on this stack (ServiceNotRunning, NoReply) or FORBIDDEN
            if self.registry_seen is not False:
                log.info("connection registry not answering (%s): showing the bootstrap connection", exc.code)
            self.registry_seen = False
            views = []
        for view in views:
            found.append(Conn(view.connection, view.environment, view.state, view.enabled, view.bootstrap, view))
        if owner == self.settings.user_id and not any(c.id == self.bootstrap for c in found):
            found.insert(0, Conn(self.bootstrap, self.settings.default_environment, "enabled", True, True))
        return found

    async def accounts(self, conn: str) -> list[str]:
        """The accounts the sync-worker of `conn` syncs."""
        ib = await self.client(conn)
        try:
            status = await ib.service_status("sync-worker", timeout=3.0)
        except IbkrError:
            return []
        return [str(a) for a in status.details.get("accounts") or []]
