"""Fixtures of the compliance service tests: real NATS, cpsim, gateway-bridge, sync-worker and
session-keeper (subprocesses), and compliance itself in-process on a fresh database per test.

Import the fixtures into a test module with `from compliance_stack import *`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from faststream import TestApp

from ibkr_common.clock import Clock
from ibkr_compliance.app import build_app
from ibkr_compliance.rules.hours import xnys
from ibkr_compliance.settings import ComplianceSettings
from ibkr_testkit.processes import ServiceProcess, service_env, start_service

NY = ZoneInfo("America/New_York")
ACCOUNT = "DU1234567"
AAPL = 265598
USER = "alice"
DISCLOSURES = ["options_risk", "day_trading_risk"]
#: The option level the sync-worker reports for ACCOUNT (Client Portal does not: IBKR_OPTIONS_LEVELS);
#: 4 permits every strategy, uncovered calls included.
OPTIONS_LEVEL = 4
_ids = itertools.count(1)


def coid(prefix: str = "t") -> str:
    """A client_order_id unique to the run."""
    return f"{prefix}-{int(time.time() * 1000) % 10**9}-{next(_ids)}"


@dataclass
class Stack:
    """The other services of one connection, running against one cpsim."""

    conn: str
    stream: str
    subjects: str
    nats_url: str
    cpsim_url: str
    processes: list[ServiceProcess] = field(default_factory=list)

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        with httpx.Client(verify=False, timeout=10) as client:
            response = client.request(method, f"{self.cpsim_url}/sim{path}", json=body)
            response.raise_for_status()
            return response.json()

    def received(self, client_order_id: str) -> list[dict[str, Any]]:
        """Orders cpsim received with this cOID."""
        state = self.sim("GET", "/state")
        orders = state.get("orders") or []
        return [o for o in orders if isinstance(o, dict) and o.get("cOID") == client_order_id]

    def stop(self) -> None:
        """Stop its processes, the last started first."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def env(self, database_url: str | None, **extra: str) -> dict[str, str]:
        return service_env(nats_url=self.nats_url, database_url=database_url, conn=self.conn, stream=self.stream,
                           stream_subjects=self.subjects, gateway_url=self.cpsim_url, **extra)


def start_processes(st: Stack, folder: Path, *, serve: str = "", **sync_extra: str) -> None:
    """gateway-bridge, sync-worker and session-keeper of `st`'s connection, ready (stopped by `st.stop()`).

    `serve` (IBKR_SERVE_CONNECTIONS of all three) lets them serve registered connections beyond the bootstrap
    one; by default they keep to it, as every instance of a service on one NATS server shares its queue group."""
    def env(database_url: str | None, **extra: str) -> dict[str, str]:
        return st.env(database_url, IBKR_SERVE_CONNECTIONS=serve or re.escape(st.conn), **extra)

    try:  # the bridge first (the others call it from their start), then those two together
        st.processes.append(start_service("ibkr_gateway_bridge", env(None)))
        st.processes.append(start_service(
            "ibkr_sync_worker", env(f"sqlite+aiosqlite:///{folder}/sync.db", IBKR_SYNC_INTERVAL="600000",
                                    **sync_extra),
            ready=""))
        st.processes.append(start_service(
            "ibkr_session_keeper", env(f"sqlite+aiosqlite:///{folder}/keeper.db", IBKR_TICKLE_INTERVAL="5000"),
            ready=""))
        for process in st.processes[1:]:
            process.wait_for_line("ready", 60)
    except BaseException:
        st.stop()
        raise


def regular_hours(now: datetime) -> datetime:
    """A moment of New York's regular session at or before `now`: 12:00 New York on the latest NYSE session
    whose noon has passed (today's when past noon, else the session before; early closes are at 13:00).
    cpsim's clock is set there so that orders fill whatever the time of day the suite runs."""
    calendar = xnys()
    day = now.astimezone(NY).date()
    while True:
        noon = datetime.combine(day, dtime(12, 0), NY)
        if calendar.is_session(day) and noon <= now:
            return noon.astimezone(UTC)
        day -= timedelta(days=1)


class GatewayClock:
    """The time on cpsim's clock (real time plus its offset, read once): for a compliance that decides on
    quotes stamped by a cpsim whose clock was moved, as a real gateway's and ours agree."""

    def __init__(self, stack: Stack) -> None:
        self.offset = timedelta(seconds=float(stack.sim("GET", "/clock")["offset_s"]))

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module")
def stack(nats_url: str, cpsim_url: str, run_names: Any, tmp_path_factory: pytest.TempPathFactory,
          stack_sim_clock: datetime | None) -> Iterator[Stack]:
    """gateway-bridge, sync-worker and session-keeper as subprocesses on a connection of this module
    (ACCOUNT at option level OPTIONS_LEVEL). With `stack_sim_clock` (a module fixture; None by default in
    conftest.py) cpsim's clock is set to that moment before anything starts, and back to real time after."""
    n = next(_ids)
    conn = f"{run_names.conn}-c{n}"
    st = Stack(conn, f"{run_names.stream}_C{n}", f"ibkr.{conn}.events.>", nats_url, cpsim_url)
    if stack_sim_clock is not None:
        st.sim("POST", "/clock", {"now": stack_sim_clock.isoformat()})
    st.sim("POST", "/reset", {"keep_clock": stack_sim_clock is not None})
    start_processes(st, tmp_path_factory.mktemp(f"stack{n}"), IBKR_OPTIONS_LEVELS=f"{ACCOUNT}={OPTIONS_LEVEL}")
    try:
        yield st
    finally:
        st.stop()
        if stack_sim_clock is not None:
            st.sim("POST", "/reset")  # the real clock again, for the modules after this one


def compliance_settings(stack: Stack, database_url: str, **extra: Any) -> ComplianceSettings:
    """Settings of an in-process compliance app on the stack's connection."""
    return ComplianceSettings(
        nats_url=stack.nats_url, database_url=database_url, connection=stack.conn, events_stream=stack.stream,
        events_subjects=stack.subjects, **extra,
    )


@pytest.fixture
def start_compliance(stack: Stack) -> Callable[..., Any]:
    """Factory: an async context manager running compliance in-process on a database."""

    @asynccontextmanager
    async def run(database_url: str, *, clock: Clock | None = None, **extra: Any) -> AsyncIterator[None]:
        app = build_app(compliance_settings(stack, database_url, **extra), clock=clock)
        async with TestApp(app):
            yield

    return run


async def call(nc: Any, stack: Stack, subject: str, payload: Any, timeout: float = 30.0) -> dict[str, Any]:
    """Request `ibkr.<conn>.<subject>` and decode the reply."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    msg = await nc.request(f"ibkr.{stack.conn}.{subject}", data, timeout=timeout)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


async def synced(nc: Any, stack: Stack) -> None:
    """Ask the sync-worker for a fresh sync of the account."""
    reply = await call(nc, stack, "sync.trigger", {"account_id": ACCOUNT}, timeout=60)
    assert reply["ok"], reply


async def acknowledged(nc: Any, stack: Stack, user: str = USER) -> None:
    reply = await call(nc, stack, "compliance.acknowledge", {"user_id": user, "disclosures": DISCLOSURES})
    assert reply["ok"], reply


def order(client_order_id: str, **changes: Any) -> dict[str, Any]:
    """A LMT BUY 1 AAPL @ 230 (near cpsim's price: no o163 question), changed by `changes`."""
    base: dict[str, Any] = {
        "client_order_id": client_order_id, "user_id": USER, "account_id": ACCOUNT, "environment": "paper",
        "instrument": {"conid": AAPL}, "side": "BUY", "quantity": "1", "order_type": "LMT",
        "limit_price": "230.00", "tif": "DAY", "position_effect": "open",
    }
    base.update(changes)
    return base


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


__all__ = ["stack", "start_compliance"]
