"""Fixtures of the sync-worker tests: per-test names, cpsim, the real bridge and the worker in-process."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from faststream import FastStream, TestApp

from ibkr_sync_worker.app import build_app
from ibkr_sync_worker.settings import SyncSettings

_counter = itertools.count(1)


@dataclass
class Names:
    """A connection and stream for one test alone."""

    conn: str
    stream: str

    @property
    def subjects(self) -> str:
        return f"ibkr.{self.conn}.events.>"

    def subject(self, name: str) -> str:
        return f"ibkr.{self.conn}.{name}"


@pytest.fixture
def names(run_names: Any) -> Names:
    n = next(_counter)
    return Names(conn=f"{run_names.conn}-sw{n}", stream=f"{run_names.stream}_SW{n}")


class Sim:
    """The /sim control API of cpsim."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, verify=False, timeout=10)

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(method, "/sim" + path, json=body)
        response.raise_for_status()
        return response.json()

    def requests_to(self, fragment: str) -> int:
        log = self("GET", "/state").get("requests") or []
        return sum(fragment in str(r.get("path", "")) for r in log)


@pytest.fixture
def sim(cpsim_url: str) -> Sim:
    """cpsim, reset: one paper account DU1234567, prices still, limits lifted."""
    s = Sim(cpsim_url)
    s("POST", "/reset")
    s("POST", "/market", {"walk": False})
    s("POST", "/limits", {"enabled": False})
    s("DELETE", "/faults")
    return s


@dataclass
class Events:
    """Every event of the test's connection, as received (core NATS subscription)."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def types(self) -> list[str]:
        return [e["type"] for e in self.items]

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.items if e["type"] == event_type]

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for e in self.items:
                if predicate(e):
                    return e
            await asyncio.sleep(0.05)
        raise AssertionError(f"no such event in {self.types()}")


@pytest.fixture
async def events(nats_client: Any, names: Names) -> AsyncIterator[Events]:
    collected = Events()

    async def on_msg(msg: Any) -> None:
        collected.items.append(json.loads(msg.data))

    sub = await nats_client.subscribe(names.subjects, cb=on_msg)
    yield collected
    await sub.unsubscribe()


def worker_settings(names: Names, nats_url: str, database_url: str, **extra: Any) -> SyncSettings:
    values: dict[str, Any] = {"sync_interval_ms": 600_000, "fill_resync_delay_ms": 200,
                              "serve_connections": re.escape(names.conn),  # not other runs' connections
                              "events_subjects": names.subjects, **extra}
    return SyncSettings(nats_url=nats_url, database_url=database_url, connection=names.conn,
                        events_stream=names.stream, **values)


@pytest.fixture
def start_bridge(names: Names, nats_url: str, cpsim_url: str) -> Callable[..., Any]:
    """Factory: the real gateway-bridge in-process, pointed at cpsim."""
    from contextlib import asynccontextmanager

    from ibkr_gateway_bridge.app import build_app as build_bridge
    from ibkr_gateway_bridge.settings import BridgeSettings

    scheme, rest = cpsim_url.split("://", 1)
    host, port = rest.rsplit(":", 1)

    @asynccontextmanager
    async def run(**extra: Any) -> AsyncIterator[FastStream]:
        settings = BridgeSettings(nats_url=nats_url, connection=names.conn, events_stream=names.stream,
                                  events_subjects=names.subjects, gateway_host=host, gateway_port=int(port),
                                  gateway_ssl=scheme == "https", **extra)
        async with TestApp(build_bridge(settings)) as app:
            yield app

    return run


@pytest.fixture
def start_worker(names: Names, nats_url: str) -> Callable[..., Any]:
    """Factory: the sync-worker in-process on a database."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(database_url: str, **extra: Any) -> AsyncIterator[FastStream]:
        async with TestApp(build_app(worker_settings(names, nats_url, database_url, **extra))) as app:
            yield app

    return run


async def request(nc: Any, subject: str, body: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """A request/reply round trip, JSON both ways."""
    msg = await nc.request(subject, json.dumps(body).encode(), timeout=timeout)
    return json.loads(msg.data)  # type: ignore[no-any-return]
