"""Fixtures of the session-keeper tests: a real cpsim and gateway-bridge per test, the keeper in-process.

The keeper's clock follows cpsim's: both are the wall clock plus an offset, and `Stack.clock_to`
/ `Stack.advance` move them together, so idle timeouts, warnings and midnights happen in seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from faststream import FastStream, TestApp

from ibkr_session_keeper.app import build_app
from ibkr_session_keeper.keeper import Keeper
from ibkr_session_keeper.settings import SessionKeeperSettings

_counter = itertools.count(1)
NOON = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # Tuesday 09:00 New York, 15:00 Zug, 22:00 Hong Kong


class FollowingClock:
    """The wall clock plus an offset: the same time cpsim tells once the offsets agree."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Events:
    """Session events of one connection, as a subscriber sees them."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def types(self, since: int = 0) -> list[str]:
        return [e["type"].removeprefix("session.") for e in self.items[since:]]

    def of(self, kind: str, since: int = 0) -> list[dict[str, Any]]:
        return [e for e in self.items[since:] if e["type"] == f"session.{kind}"]

    async def wait_for(self, kind: str, timeout: float = 20.0, since: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(kind, since)
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no session.{kind} within {timeout} s; saw {self.types(since)}")


@dataclass
class Stack:
    """cpsim + gateway-bridge (subprocesses) for one connection, and what a test needs around them."""

    conn: str
    stream: str
    nats_url: str
    sim_url: str
    port: int
    region: str
    nc: Any
    events: Events
    clock: FollowingClock = field(default_factory=FollowingClock)
    cpsim: Any = None
    bridge: Any = None
    idle_timeout: float = 300.0
    stream_subjects: str = ""

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.sim_url}/sim{path}", json=body, verify=False, timeout=10)
        response.raise_for_status()
        return response.json()

    def _follow(self, answer: dict[str, Any]) -> None:
        self.clock.offset = timedelta(seconds=float(answer["offset_s"]))

    def clock_to(self, when: datetime) -> None:
        """Set cpsim's clock, and the keeper's with it."""
        self._follow(self.sim("POST", "/clock", {"now": when.isoformat()}))

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._follow(self.sim("POST", "/clock", {"advance_s": seconds}))

    def start_gateway(self) -> None:
        from cpsim.testing import start_cpsim

        args = ["--region", self.region, "--idle-timeout", str(self.idle_timeout)]
        self.cpsim = start_cpsim(port=self.port, extra_args=args)

    def stop_gateway(self) -> None:
        self.cpsim.stop()

    def settings(self, database_url: str, **extra: Any) -> SessionKeeperSettings:
        values: dict[str, Any] = {
            "nats_url": self.nats_url, "database_url": database_url, "connection": self.conn,
            "events_stream": self.stream, "events_subjects": self.stream_subjects,
            "tickle_interval_ms": 1000, "gateway_region": self.region, "reauth_backoff_s": 1.0,
            "reauth_backoff_max_s": 30.0,
            "serve_connections": re.escape(self.conn),  # not the connections other runs announce on this NATS
        }
        return SessionKeeperSettings(**(values | extra))

    @asynccontextmanager
    async def keeper(self, database_url: str, **extra: Any) -> AsyncIterator[Keeper]:
        """The keeper app in-process, on this stack's clock."""
        app: FastStream = build_app(self.settings(database_url, **extra), clock=self.clock)
        async with TestApp(app):
            yield app.keeper  # type: ignore[attr-defined]

    async def request(self, name: str, body: dict[str, Any] | None = None, timeout: float = 20) -> dict[str, Any]:
        reply = await self.nc.request(f"ibkr.{self.conn}.{name}", json.dumps(body or {}).encode(), timeout=timeout)
        return json.loads(reply.data)  # type: ignore[no-any-return]

    def calls(self, path_part: str) -> int:
        """How many requests cpsim received whose path contains `path_part`."""
        return sum(1 for r in self.sim("GET", "/state")["requests"] if path_part in r["path"])


@pytest.fixture
def make_stack(nats_url: str, run_names: Any, nats_client: Any) -> Iterator[Callable[..., Any]]:
    """Factory: `await make_stack(region="us", idle_timeout=300.0)` starts cpsim and the bridge."""
    from ibkr_testkit.processes import service_env, start_service
    from ibkr_testkit.servers import free_port

    stacks: list[Stack] = []

    async def make(region: str = "us", idle_timeout: float = 300.0, start_at: datetime = NOON, *,
                   conn: str | None = None, stream: str | None = None, stream_subjects: str | None = None,
                   bridge: bool = True, bridge_serves: str | None = None) -> Stack:
        """`conn`, `stream`, `stream_subjects`: a second connection's gateway on a stream shared with the first
        (default: a connection and stream of its own). `bridge=False` starts no gateway-bridge: the connection
        is served by the one bridge of another stack (started with `bridge_serves`, a regular expression over
        connection ids, default this connection alone) once announced, as in production, where one bridge
        serves every connection: two bridges on one NATS would share a queue group over `ibkr.*.bridge.…`."""
        n = next(_counter)
        conn = conn or f"{run_names.conn}-sk{n}"
        stream = stream or f"{run_names.stream}_SK{n}"
        stream_subjects = stream_subjects or f"ibkr.{conn}.events.>"
        events = Events()

        async def collect(msg: Any) -> None:
            events.items.append(json.loads(msg.data))

        await nats_client.subscribe(f"ibkr.{conn}.events.session.>", cb=collect)
        stack = Stack(conn=conn, stream=stream, nats_url=nats_url, sim_url="", port=free_port(), region=region,
                      nc=nats_client, events=events, idle_timeout=idle_timeout, stream_subjects=stream_subjects)
        stack.start_gateway()
        stack.sim_url = stack.cpsim.url
        if bridge:
            env = service_env(nats_url=nats_url, database_url=None, conn=conn, stream=stack.stream,
                              stream_subjects=stream_subjects, gateway_url=stack.cpsim.url,
                              ibkr_serve_connections=bridge_serves or re.escape(conn))
            stack.bridge = start_service("ibkr_gateway_bridge", env)
        stack.clock_to(start_at)  # a quiet weekday noon in every region unless a test says otherwise
        stack.sim("POST", "/login")
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        if stack.bridge is not None:
            stack.bridge.stop()
        stack.cpsim.stop()
