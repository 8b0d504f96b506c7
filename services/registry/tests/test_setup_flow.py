"""The user's four-step setup end to end: the registry, ONE real gateway-bridge (against cpsim) and ONE compliance
serving every connection, as in production: started on the stack's bootstrap connection, they learn the new
connection from the registry itself (its `connection.registered` event); audit stores the events. Then
everything the run left behind (every process's log, every reply, the outbox, the stream and audit's log) is
searched for the username and the keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ibkr_common.db.engine import make_engine
from ibkr_testkit.processes import ServiceProcess, service_env, start_service

from .conftest import (
    CPSIM_ACCOUNT,
    KEY_NEW,
    KEY_OLD,
    OWNER,
    USERNAME,
    Names,
    admin,
    create_body,
    serves_the_tests,
    until_served,
)

pytestmark = [pytest.mark.connected, pytest.mark.e2e, pytest.mark.slow]
PAPER_DISCLOSURES = ["options_risk", "day_trading_risk"]


class Flow:
    """The processes of one setup, and everything they said."""

    def __init__(self, names: Names, nats_url: str, cpsim_url: str, folder: Path) -> None:
        self.names, self.nats_url, self.cpsim_url, self.folder = names, nats_url, cpsim_url, folder
        self.processes: list[ServiceProcess] = []
        self.replies: list[dict[str, Any]] = []

    def db(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{self.folder}/{name}.db"

    def env(self, database: str | None, **extra: str) -> dict[str, str]:
        """A service of the stack: bootstrap connection `names.boot`, serving the test's connections only."""
        return service_env(nats_url=self.nats_url, database_url=database, conn=self.names.boot,
                           stream=self.names.stream, stream_subjects=self.names.subjects, gateway_url=self.cpsim_url,
                           IBKR_LOG_LEVEL="DEBUG", IBKR_USER_ID="operator",
                           IBKR_SERVE_CONNECTIONS=serves_the_tests(self.names), **extra)

    def start(self, module: str, env: dict[str, str]) -> ServiceProcess:
        process = start_service(module, env)
        self.processes.append(process)
        return process

    async def ask(self, nc: Any, command: str, body: dict[str, Any], timeout: float = 90.0) -> dict[str, Any]:
        reply = await admin(nc, command, body, timeout)
        self.replies.append(reply)
        return reply

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def flow(names: Names, nats_url: str, cpsim_url: str, tmp_path: Path) -> Iterator[Flow]:
    with httpx.Client(verify=False, timeout=10) as sim:
        sim.post(f"{cpsim_url}/sim/reset").raise_for_status()
        sim.post(f"{cpsim_url}/sim/limits", json={"enabled": False}).raise_for_status()
    f = Flow(names, nats_url, cpsim_url, tmp_path)
    try:
        yield f
    finally:
        f.stop()


async def test_four_step_setup_enables_the_connection_and_leaks_no_secret(flow, names, nats_client, events):
    registry = flow.start("ibkr_registry", flow.env(flow.db("registry"), IBKR_ENCRYPTION_KEY=KEY_NEW,
                                                    IBKR_OLD_ENCRYPTION_KEYS=KEY_OLD))
    flow.start("ibkr_audit", flow.env(flow.db("audit")))
    flow.start("ibkr_gateway_bridge", flow.env(None))
    flow.start("ibkr_compliance", flow.env(flow.db("compliance")))
    ref = {"user_id": OWNER, "connection": names.conn}

    # steps 1 and 2: environment, gateway and username
    created = await flow.ask(nats_client, "connections.create", create_body(names, flow.cpsim_url))
    assert created["ok"], created
    assert (created["result"]["state"], created["result"]["enabled"]) == ("unverified", False)
    for service in ("gateway-bridge", "compliance"):  # each learns the new connection from the registry's event
        served = await until_served(nats_client, names.conn, service)
        assert served["ok"] and served["result"]["connection"] == names.conn, (service, served)

    # step 3: verify through the bridge serving the connection
    verified = await flow.ask(nats_client, "connections.verify", ref)
    assert verified["ok"], verified
    result = verified["result"]
    checks = {c["check"]: c for c in result["checks"]}
    assert result["ok"] is True, checks
    assert [checks[c]["ok"] for c in ("reachable", "authenticated", "environment", "accounts", "summaries")] == [
        True] * 5
    assert checks["username"]["skipped"] is True and "does not pass on the logged-in username" in checks[
        "username"]["detail"]
    assert checks["disclosures"]["ok"] is False and "options_risk" in checks["disclosures"]["detail"]
    (account,) = result["connection"]["accounts"]
    assert account["account_id"] == CPSIM_ACCOUNT and account["net_liquidation"] and account["currency"] == "USD"
    assert (result["connection"]["state"], result["connection"]["enabled"]) == ("verified", False)
    assert sorted(result["connection"]["missing_disclosures"]) == sorted(PAPER_DISCLOSURES)

    # per-account settings: only verified accounts, live only on live connections
    live = await flow.ask(nats_client, "connections.settings", {
        **ref, "accounts": [{"account_id": CPSIM_ACCOUNT, "options_level": 2, "live_enabled": True}]})
    assert live["error"]["code"] == "VALIDATION_ERROR"
    assert live["error"]["details"] == [{"field": "accounts.0.live_enabled",
                                         "message": "live trading cannot be enabled on a paper connection"}]
    unknown = await flow.ask(nats_client, "connections.settings", {**ref, "accounts": [{"account_id": "U999"}]})
    assert unknown["error"]["details"][0]["field"] == "accounts.0.account_id"
    levelled = await flow.ask(nats_client, "connections.settings", {
        **ref, "accounts": [{"account_id": CPSIM_ACCOUNT, "options_level": 2}]})
    assert levelled["ok"] and levelled["result"]["accounts"][0]["options_level"] == 2

    # step 4: acknowledge through compliance, which owns acknowledgments; a bad id is compliance's error
    bad = await flow.ask(nats_client, "connections.acknowledge", {**ref, "disclosures": ["no_such_thing"]})
    assert bad["error"]["code"] == "VALIDATION_ERROR" and bad["error"]["details"][0]["field"] == "disclosures.0"
    partly = await flow.ask(nats_client, "connections.acknowledge", {**ref, "disclosures": ["options_risk"]})
    assert partly["ok"] and partly["result"]["missing_disclosures"] == ["day_trading_risk"]
    assert partly["result"]["enabled"] is False
    done = await flow.ask(nats_client, "connections.acknowledge", {**ref, "disclosures": ["day_trading_risk"]})
    assert done["ok"], done
    assert (done["result"]["state"], done["result"]["enabled"], done["result"]["missing_disclosures"]) == (
        "enabled", True, [])
    status = await nats_client.request(f"ibkr.{names.conn}.compliance.status",
                                       json.dumps({"user_id": OWNER, "account_id": CPSIM_ACCOUNT}).encode(), timeout=10)
    assert json.loads(status.data)["result"]["missing_acknowledgments"] == []

    await events.wait_for("connection.enabled", names.conn)
    assert events.types(names.conn) == ["connection.registered", "connection.verified", "connection.updated",
                                        "connection.updated", "connection.updated", "connection.enabled"]

    # a new gateway needs a new verification: unverified and disabled again
    moved = await flow.ask(nats_client, "connections.update", {**ref, "username": "someone-else"})
    assert (moved["result"]["state"], moved["result"]["enabled"]) == ("unverified", False)
    await events.wait_for("connection.disabled", names.conn)
    again = await flow.ask(nats_client, "connections.verify", ref)
    failed = [c for c in again["result"]["checks"] if not c["ok"]]
    assert again["result"]["connection"]["enabled"] is True, failed  # still acknowledged: enabled once verified
    await events.wait_for("connection.verified", names.conn)

    stored = await _audit_has(flow.db("audit"), names.conn, len(events.types(names.conn)))
    assert {"connection.registered", "connection.enabled", "connection.disabled"} <= set(stored)
    await asyncio.sleep(0.5)
    flow.stop()

    secrets = {USERNAME, "someone-else", KEY_NEW, KEY_OLD}
    captured = {
        "logs": "".join(line for p in flow.processes for line in p.lines),
        "replies": json.dumps(flow.replies),
        "events": b"\n".join(events.raw).decode(),
        "outbox": await _dump(flow.db("registry"), "SELECT * FROM ibkr_event_outbox"),
        "audit": await _dump(flow.db("audit"), "SELECT * FROM ibkr_trading_activity_log"),
        "stream": await _stream(nats_client, names),
    }
    assert "registry ready" in "".join(registry.lines)
    assert all(captured.values())
    leaked = {(where, s) for where, body in captured.items() for s in secrets if s in body}
    assert not leaked, leaked


async def _audit_has(url: str, conn: str, at_least: int) -> list[str]:
    for _ in range(100):
        engine = make_engine(url)
        async with engine.connect() as c:
            types = list((await c.execute(text("SELECT type FROM ibkr_trading_activity_log WHERE conn = :c"),
                                          {"c": conn})).scalars())
        await engine.dispose()
        if len(types) >= at_least:
            return types
        await asyncio.sleep(0.2)
    raise AssertionError(f"audit stored only {types}")


async def _dump(url: str, query: str) -> str:
    engine = make_engine(url)
    async with engine.connect() as c:
        rows = (await c.execute(text(query))).all()
    await engine.dispose()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


async def _stream(nc: Any, names: Names) -> str:
    js = nc.jetstream()
    info = await js.stream_info(names.stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg(names.stream, seq)
        out.append((message.data or b"").decode())
    return "\n".join(out)
