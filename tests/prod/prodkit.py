"""Helpers of the production-topology tests: connections as each NATS user, refusals, names."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client

from ibkr_devstack.prod import ProdStack

CONN = "paper"
ACCOUNT = "DU1234567"
#: The compose variable holding each NATS user's password.
PASSWORDS = {
    "gateway-bridge": "BRIDGE_NATS_PASSWORD", "session-keeper": "SESSION_NATS_PASSWORD",
    "sync-worker": "SYNC_NATS_PASSWORD", "compliance": "COMPLIANCE_NATS_PASSWORD", "audit": "AUDIT_NATS_PASSWORD",
    "provision": "PROVISION_NATS_PASSWORD", "client": "CLIENT_NATS_PASSWORD", "registry": "REGISTRY_NATS_PASSWORD",
    "operator": "OPERATOR_NATS_PASSWORD", "authz": "AUTHZ_NATS_PASSWORD", "console": "CONSOLE_NATS_PASSWORD",
    "authz-kick": "AUTHZ_KICK_NATS_PASSWORD",
}
SERVICES = ["gateway-bridge", "session-keeper", "sync-worker", "compliance", "audit", "registry"]
#: Connections the tests open are named so; the services' are `ibkr-<service>-<conn>`.
TEST_CONNECTION = "prod-test-"


@dataclass
class Connection:
    """A NATS connection as one user, with the errors the server sent it (permission violations)."""

    user: str
    nc: Client
    errors: list[str] = field(default_factory=list)
    drops: int = 0  # times the server closed it (with `reconnect`)
    returns: int = 0  # times it reconnected on its own

    async def refused(self, fragment: str, timeout: float = 3.0) -> str:
        """Wait for the server's permissions violation naming `fragment`; return it."""
        wanted = fragment.lower()
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for error in self.errors:
                if "permissions violation" in error and wanted in error:
                    return error
            await asyncio.sleep(0.02)
        raise AssertionError(f"{self.user}: no permissions violation for {fragment!r}; errors: {self.errors}")

    async def publish_refused(self, subject: str, payload: bytes = b"{}") -> str:
        """Publish (as a request would, with a reply inbox) and expect the server to refuse it."""
        await self.nc.publish(subject, payload, reply=self.nc.new_inbox())
        await self.nc.flush()
        return await self.refused(f'publish to "{subject}"')

    async def subscribe_refused(self, subject: str) -> str:
        await self.nc.subscribe(subject)
        await self.nc.flush()
        return await self.refused(f'subscription to "{subject}"')

    async def call(self, subject: str, payload: Any, timeout: float = 30.0) -> dict[str, Any]:
        """Request `ibkr.paper.<subject>` and decode the JSON reply."""
        msg = await self.nc.request(f"ibkr.{CONN}.{subject}", json.dumps(payload).encode(), timeout=timeout)
        reply: dict[str, Any] = json.loads(msg.data)
        return reply


def password(stack: ProdStack, user: str) -> str:
    return stack.variables[PASSWORDS[user]]


@asynccontextmanager
async def connected(stack: ProdStack, user: str, *, inbox: str | None = None, secret: str | None = None,
                    reconnect: bool = False) -> AsyncIterator[Connection]:
    """Connect as `user` (its own inbox prefix unless `inbox` says otherwise), with its password or `secret`
    (a person, whom NATS's auth callout checks: `secret` is their password). With `reconnect`, the client
    reconnects on its own as nats-py does by default, and counts its drops and returns."""
    conn = Connection(user, Client())

    async def on_error(exc: Exception) -> None:
        conn.errors.append(str(exc))

    async def dropped() -> None:
        conn.drops += 1

    async def back() -> None:
        conn.returns += 1

    conn.nc = await nats.connect(stack.nats_url(user, secret if secret is not None else password(stack, user)),
                                 name=f"{TEST_CONNECTION}{user}", inbox_prefix=inbox or f"_INBOX_{user}",
                                 error_cb=on_error, allow_reconnect=reconnect, connect_timeout=5,
                                 disconnected_cb=dropped, reconnected_cb=back)
    try:
        yield conn
    finally:
        await conn.nc.close()


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait until `check()` holds (the server's deliveries, errors and reconnections arrive asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not seen within {timeout} s: {what}")
        await asyncio.sleep(0.02)
