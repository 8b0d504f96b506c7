"""Orders under faults, with real processes: the gateway-bridge, the sync-worker or compliance SIGKILLed
during a burst of orders whose clients retry with the same client_order_id, and restarted as `make run`
would; and the bridge killed mid-POST after the gateway accepted the order.

After each: every order ends in a definite state, none reaches cpsim twice (its request log), no caller
waits past orders.submit's documented answer time (30 s), and no retryable failure is recorded as final.
Compliance runs as a subprocess on SQLite or PostgreSQL, with its default timeouts. `FAULTS_STATS=1`
prints what the clients of each burst were answered on the way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from sqlalchemy import select

from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.models import ComplianceDecisionLog, OrderLedger
from ibkr_compliance.settings import ComplianceSettings
from ibkr_testkit.processes import ServiceProcess, start_service

from .compliance_stack import ACCOUNT, OPTIONS_LEVEL, Stack, acknowledged, coid, order, synced

pytestmark = [pytest.mark.connected, pytest.mark.slow, pytest.mark.timeout(240)]

#: orders.submit's documented answer time (CONTRACT.md, the AsyncAPI description).
ANSWER_S = 30.0
#: Every order of a test must have its definite answer by then.
SETTLE_S = 100.0
BURST = 40
#: How long the simulated gateway takes over each order POST during a burst.
GATEWAY_DELAY_MS = 250
_ids = itertools.count(1)


@dataclass
class Services:
    """The stack's services as restartable subprocesses (compliance included), with their environments."""

    stack: Stack
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    running: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, module: str) -> None:
        self.running[module] = start_service(module, self.envs[module])

    def kill(self, module: str) -> None:
        self.running.pop(module).kill()

    async def kill_and_restart(self, module: str, down_s: float = 1.5) -> None:
        """SIGKILL, then started again a moment later (as `make run` restarts a process that died)."""
        self.kill(module)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.start, module)

    def stop_all(self) -> None:
        for process in reversed(list(self.running.values())):
            process.stop()
        self.running.clear()


@pytest.fixture(scope="module")
def services(nats_url: str, cpsim_url: str, run_names: Any, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Services]:
    n = next(_ids)
    conn = f"{run_names.conn}-f{n}"
    stack = Stack(conn, f"{run_names.stream}_F{n}", f"ibkr.{conn}.events.>", nats_url, cpsim_url)
    folder: Path = tmp_path_factory.mktemp(f"faults{n}")
    found = Services(stack)
    found.envs["ibkr_gateway_bridge"] = stack.env(None)
    found.envs["ibkr_sync_worker"] = stack.env(f"sqlite+aiosqlite:///{folder}/sync.db", IBKR_SYNC_INTERVAL="600000",
                                               IBKR_OPTIONS_LEVELS=f"{ACCOUNT}={OPTIONS_LEVEL}")
    found.envs["ibkr_session_keeper"] = stack.env(f"sqlite+aiosqlite:///{folder}/keeper.db",
                                                  IBKR_TICKLE_INTERVAL="5000")
    # the run's cpsim as new before anything calls it: a penalty box an earlier module left there would
    # otherwise answer the bridge's first calls 429, and its limiter keeps those endpoints boxed for 600 s
    # (the `running` fixture's reset clears the simulator's box, not the bridge's)
    stack.sim("POST", "/reset")
    try:
        for module in ("ibkr_gateway_bridge", "ibkr_sync_worker", "ibkr_session_keeper"):
            found.start(module)
        yield found
    finally:
        found.stop_all()
        stack.sim("DELETE", "/faults")


@pytest.fixture
def compliance_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh migrated ledger database: SQLite (`sqlite`) or PostgreSQL (`postgres`)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    make: Callable[[str], str] = request.getfixturevalue("make_database")
    return make(f"faults{next(_ids)}")


@pytest.fixture
async def running(services: Services, compliance_db: str, nats_client: Any) -> Any:
    """Compliance as a subprocess on the test's database, the account synced, disclosures acknowledged."""
    services.stack.sim("POST", "/reset")
    services.envs["ibkr_compliance"] = services.stack.env(compliance_db)
    services.start("ibkr_compliance")
    await acknowledged(nats_client, services.stack)
    await synced(nats_client, services.stack)
    yield services
    services.running.pop("ibkr_compliance").stop()
    services.stack.sim("DELETE", "/faults")


@dataclass
class Client:
    """One order whose client retries with the same client_order_id until it gets a definite answer."""

    cid: str
    #: Seconds each answered call waited for its answer.
    waits: list[float] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    #: Calls that got no answer at all (compliance died holding them: the caller's own timeout).
    lost: int = 0
    final: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0

    async def run(self, nc: Any, conn: str, until: float, after_s: float = 0.0) -> None:
        await asyncio.sleep(after_s)
        self.started = time.monotonic()
        body = json.dumps(order(self.cid)).encode()
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                msg = await nc.request(f"ibkr.{conn}.orders.submit", body, timeout=ANSWER_S + 5)
            except nats.errors.NoRespondersError:  # compliance is not there (restarting): at once
                msg = None
            except nats.errors.TimeoutError:
                self.lost += 1
                msg = None
            if msg is not None:
                self.waits.append(time.monotonic() - started)
                reply: dict[str, Any] = json.loads(msg.data)
                self.replies.append(reply)
                if reply["ok"] or not reply["error"].get("retryable"):
                    self.final, self.ended = reply, time.monotonic()
                    return
            await asyncio.sleep(0.5)


async def received_by_cpsim(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    state = await asyncio.to_thread(stack.sim, "GET", "/state")
    by_coid: dict[str, list[dict[str, Any]]] = {}
    for o in state.get("orders") or []:
        if isinstance(o, dict) and o.get("cOID"):
            by_coid.setdefault(o["cOID"], []).append(o)
    return by_coid


async def when_received(stack: Stack, count: int, ids: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await received_by_cpsim(stack)
        if sum(1 for c in ids if c in got) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"cpsim never received {count} of the burst")


async def ledger_rows(url: str, ids: list[str]) -> dict[str, Any]:
    engine = make_engine(url)
    owner = str(ComplianceSettings.model_fields["user_id"].default)  # the rows' owner (RLS on PostgreSQL)
    try:
        async with user_transaction(make_sessionmaker(engine), owner) as session:
            rows = (await session.execute(select(OrderLedger).where(OrderLedger.client_order_id.in_(ids)))
                    ).scalars().all()
    finally:
        await engine.dispose()
    return {r.client_order_id: r for r in rows}


async def decision_snapshots(url: str, ids: list[str]) -> list[dict[str, Any]]:
    """The state snapshots of the decisions logged for these orders."""
    engine = make_engine(url)
    owner = str(ComplianceSettings.model_fields["user_id"].default)
    try:
        async with user_transaction(make_sessionmaker(engine), owner) as session:
            rows = (await session.execute(select(ComplianceDecisionLog.state_snapshot).where(
                ComplianceDecisionLog.client_order_id.in_(ids)))).scalars().all()
    finally:
        await engine.dispose()
    return [r if isinstance(r, dict) else json.loads(r) for r in rows]


async def assert_definite(clients: list[Client], stack: Stack, url: str, *, lost_ok: bool = False) -> None:
    """Every order submitted exactly once, every answer in time, nothing retryable recorded as final."""
    for c in clients:
        assert c.final is not None, f"{c.cid}: no definite answer; last replies {c.replies[-2:]}"
        assert c.final["ok"] and c.final["result"]["status"] == "submitted", (c.cid, c.final)
        assert max(c.waits) <= ANSWER_S, (c.cid, c.waits)
        for reply in c.replies[:-1]:  # everything before the definite answer was retryable
            assert not reply["ok"] and reply["error"]["retryable"], (c.cid, reply)
        assert lost_ok or c.lost == 0, c.cid
    received = await received_by_cpsim(stack)
    for c in clients:
        got = received.get(c.cid, [])
        assert [o["sim"]["outcome"] for o in got] == ["accepted"], (c.cid, got)  # at the gateway once
        assert c.final is not None and str(got[0]["sim"]["order_id"]) == c.final["result"]["order_id"]
    rows = await ledger_rows(url, [c.cid for c in clients])
    assert {cid: r.status for cid, r in rows.items()} == {c.cid: "submitted" for c in clients}


async def burst(services: Services, nc: Any, fault: Callable[[list[str]], Any], spread_s: float = 0.0
                ) -> list[Client]:
    """BURST concurrent orders (their first tries spread over `spread_s`), retried by their clients, with
    `fault(ids)` running beside them."""
    clients = [Client(coid("burst")) for _ in range(BURST)]
    # a gateway that takes its time with each order (as a real one does): the burst lasts seconds, and the
    # fault finds orders at every stage (deciding, queued at the bridge, in the POST)
    await asyncio.to_thread(services.stack.sim, "POST", "/faults", {
        "path_glob": "/iserver/account/*/orders", "method": "POST", "delay_ms": GATEWAY_DELAY_MS, "count": 1000})
    until = time.monotonic() + SETTLE_S
    await asyncio.gather(fault([c.cid for c in clients]),
                         *(c.run(nc, services.stack.conn, until, i * spread_s / BURST) for i, c in enumerate(clients)))
    if os.environ.get("FAULTS_STATS"):
        errors = Counter(f"{r['error']['code']}:{(r['error'].get('details') or {}).get('status', '')}"
                         if isinstance(r["error"].get("details"), dict) else r["error"]["code"]
                         for c in clients for r in c.replies if not r["ok"])
        print(f"\n{dict(errors)} lost={sum(c.lost for c in clients)} max_wait={max(max(c.waits) for c in clients):.1f}"
              f" longest={max(c.ended - c.started for c in clients):.1f}")
    return clients


@pytest.mark.parametrize("compliance_db", ["sqlite", "postgres"], indirect=True)
async def test_bridge_killed_mid_post_after_the_gateway_accepted_the_order(
    running: Services, compliance_db: str, nats_client: Any
) -> None:
    stack = running.stack
    resolved: list[dict[str, Any]] = []

    async def collect(message: Any) -> None:
        resolved.append(json.loads(message.data))

    sub = await nats_client.subscribe(f"ibkr.{stack.conn}.events.orders.*.resolved", cb=collect)
    # the gateway serves the POST, then its answer is held and the connection dropped
    stack.sim("POST", "/faults", {"path_glob": "/iserver/account/*/orders", "method": "POST", "after": True,
                                  "delay_ms": 5000, "drop_connection": True})
    client = Client(coid("midpost"))

    async def fault(ids: list[str]) -> None:
        await when_received(stack, 1, ids)
        await running.kill_and_restart("ibkr_gateway_bridge")

    await asyncio.gather(fault([client.cid]), client.run(nats_client, stack.conn, time.monotonic() + SETTLE_S))
    await asyncio.sleep(0.5)
    await sub.unsubscribe()

    await assert_definite([client], stack, compliance_db)
    first = client.replies[0]["error"]
    assert first["code"] == "TIMEOUT" and first["details"]["status"] == "unknown", first
    events = [e for e in resolved if e["payload"]["client_order_id"] == client.cid]
    assert [e["payload"]["outcome"] for e in events] == ["submitted"], resolved
    row = (await ledger_rows(compliance_db, [client.cid]))[client.cid]
    assert row.result["resolution"]["outcome"] == "submitted" and row.result["resolution"]["was"] == "unknown"
    assert client.ended - client.started < 60  # resolved within 60 s of the fault


@pytest.mark.parametrize("compliance_db", ["postgres"], indirect=True)
async def test_bridge_killed_during_a_burst(running: Services, compliance_db: str, nats_client: Any) -> None:
    async def fault(ids: list[str]) -> None:
        await when_received(running.stack, 8, ids)
        await running.kill_and_restart("ibkr_gateway_bridge")

    clients = await burst(running, nats_client, fault)
    await assert_definite(clients, running.stack, compliance_db)


@pytest.mark.parametrize("compliance_db", ["sqlite"], indirect=True)
async def test_sync_worker_killed_during_a_burst(running: Services, compliance_db: str, nats_client: Any) -> None:
    async def fault(ids: list[str]) -> None:
        await when_received(running.stack, 5, ids)
        await running.kill_and_restart("ibkr_sync_worker")

    clients = await burst(running, nats_client, fault, spread_s=8.0)
    await assert_definite(clients, running.stack, compliance_db)
    snapshots = await decision_snapshots(compliance_db, [c.cid for c in clients])
    assert any(s.get("last_good") for s in snapshots), "no order was decided on the last good snapshot"
    for c in clients:  # decided on compliance's last good snapshot, at its real age
        assert c.final is not None
        assert float(c.final["result"]["computed"]["snapshot_age_s"]) < 60, c.final
        assert all("STALE_ACCOUNT_DATA" not in json.dumps(r) for r in c.replies), c.replies


@pytest.mark.parametrize("compliance_db", ["postgres"], indirect=True)
async def test_compliance_killed_during_a_burst(running: Services, compliance_db: str, nats_client: Any) -> None:
    async def fault(ids: list[str]) -> None:
        await when_received(running.stack, 8, ids)
        await running.kill_and_restart("ibkr_compliance")

    clients = await burst(running, nats_client, fault)
    # requests compliance held when it died get no answer (the caller's own timeout); every answer came in time
    await assert_definite(clients, running.stack, compliance_db, lost_ok=True)
    # only requests compliance held at the kill are lost: 8 orders had reached cpsim by then, but their answers
    # may still have been on the way (the outcome's commit), so the bound is "not all", not "at most 32"
    assert sum(c.lost for c in clients) < BURST
