"""End to end: the real gateway-bridge and session-keeper against cpsim, audit storing their events.

The services run with known credentials in their environment (a database URL with a password,
IBKR_ENCRYPTION_KEY); cpsim hands out session ids. After a login, calls, a re-authentication and a
logout, every stored row (envelopes and dead letters) is scanned for those strings.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ibkr_common.db.engine import make_engine
from ibkr_testkit.processes import ServiceProcess, service_env, start_service
from ibkr_testkit.servers import free_port

from .audit_helpers import wait_until

pytestmark = [pytest.mark.connected, pytest.mark.slow]

ENCRYPTION_KEY = "audit-e2e-key-" + uuid.uuid4().hex  # 46 characters, never in any event


class Sim:
    """cpsim as a subprocess; remembers every session id it handed out."""

    def __init__(self) -> None:
        from cpsim.testing import start_cpsim

        self.handle = start_cpsim(port=free_port())
        self.session_ids: set[str] = set()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.handle.url}/sim{path}", json=body, verify=False, timeout=10)
        response.raise_for_status()
        return response.json()

    def login(self) -> None:
        self.call("POST", "/login")
        self.remember()

    def remember(self) -> None:
        sid = self.call("GET", "/state")["session"]["session_id"]
        if sid:
            self.session_ids.add(sid)

    def secrets(self) -> set[str]:
        """Each session id, and the `sessionId` form /iserver/accounts gives of it."""
        return self.session_ids | {f"{s[:8]}.{s[8:16]}" for s in self.session_ids}


@pytest.fixture
def sim() -> Iterator[Sim]:
    s = Sim()
    try:
        yield s
    finally:
        s.handle.stop()


async def rows_of(url: str) -> tuple[list[str], list[str], list[str]]:
    """(every stored row as text, the sources of the events, the dead letters as text)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            log = (await conn.execute(text("SELECT * FROM ibkr_trading_activity_log ORDER BY seq"))).all()
            dead = (await conn.execute(text("SELECT * FROM ibkr_audit_dead_letters"))).all()
    finally:
        await engine.dispose()
    dead_texts = [
        " ".join(bytes(v).decode("utf-8", errors="replace") if isinstance(v, bytes | memoryview) else str(v)
                 for v in r)
        for r in dead
    ]
    return [" ".join(str(v) for v in r) for r in log], [r.source for r in log], dead_texts


async def test_no_credential_of_the_running_stack_is_stored(
    names: Any, nats_url: str, nats_client: Any, start_audit: Any, fresh_pg: str, sim: Sim
) -> None:
    password = make_url(fresh_pg).password
    assert password and len(str(password)) >= 16
    env = names.env(nats_url, fresh_pg, IBKR_ENCRYPTION_KEY=ENCRYPTION_KEY, IBKR_MIGRATE_ON_START="false",
                    IBKR_TICKLE_INTERVAL="1000", IBKR_REAUTH_BACKOFF_S="1")
    env |= service_env(nats_url=nats_url, database_url=fresh_pg, conn=names.conn, stream=names.stream,
                       stream_subjects=names.subjects, gateway_url=sim.handle.url)
    sim.login()
    services: list[ServiceProcess] = []

    async def ask(subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = await nats_client.request(f"ibkr.{names.conn}.{subject}", json.dumps(body or {}).encode(), timeout=20)
        return json.loads(reply.data)  # type: ignore[no-any-return]

    async with start_audit(fresh_pg):
        try:
            services.append(await asyncio.to_thread(start_service, "ibkr_gateway_bridge", env))
            services.append(await asyncio.to_thread(start_service, "ibkr_session_keeper", env))
            for op in ("session.status", "session.tickle", "session.validate", "accounts.list"):
                await ask(f"bridge.{op}")
            await wait_until(lambda: _status(ask, True), 20, "the keeper to see the session")
            await ask("session.reauthenticate")
            sim.call("POST", "/logout")
            await wait_until(lambda: _status(ask, False), 20, "the keeper to see the logout")
            sim.login()  # a second session id
            await ask("bridge.accounts.list")
            await wait_until(lambda: _status(ask, True), 20, "the keeper to see the new session")
            sim.remember()
            await asyncio.sleep(1.5)  # the bridge sends gateway.call events in batches
        finally:
            for service in reversed(services):  # the keeper first, so it sees no gateway outage
                await asyncio.to_thread(service.stop)

        async def all_stored() -> bool:
            info = await nats_client.jetstream().stream_info(names.stream)
            log, _, dead = await rows_of(fresh_pg)
            return len(log) + len(dead) >= info.state.messages

        await wait_until(all_stored, 20, "every stream message stored")
    log, sources, dead = await rows_of(fresh_pg)
    assert {"gateway-bridge", "session-keeper"} <= set(sources), set(sources)
    assert len(log) >= 10
    everything = "\n".join(log + dead)
    assert "session.authenticated" in everything and "session.unauthenticated" in everything
    secrets = {str(password), ENCRYPTION_KEY, fresh_pg} | sim.secrets()
    assert len(sim.session_ids) == 2
    leaked = {s for s in secrets if s in everything}
    assert not leaked, f"stored rows hold credentials: {leaked}"


async def _status(ask: Any, authenticated: bool) -> bool:
    reply = await ask("session.status")
    return bool(reply.get("ok")) and reply["result"]["authenticated"] is authenticated
