"""Fixtures: the bridge in-process against the run's NATS and cpsim (HTTPS), and helpers to drive both."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest

from ibkr_gateway_bridge.app import build_app
from ibkr_gateway_bridge.service import BridgeService
from ibkr_gateway_bridge.settings import BridgeSettings
from ibkr_testkit.servers import start_nats

ACCT = "DU1234567"
AAPL = 265598


def bridge_settings(nats_url: str, cpsim_url: str, run_names: Any, **extra: Any) -> BridgeSettings:
    scheme, rest = cpsim_url.split("://", 1)
    host, port = rest.rstrip("/").rsplit(":", 1)
    return BridgeSettings(
        IBKR_CONNECTION=run_names.conn, NATS_URL=nats_url, IBKR_GATEWAY_HOST=host, IBKR_GATEWAY_PORT=int(port),
        IBKR_GATEWAY_SSL=scheme == "https", IBKR_EVENTS_STREAM=run_names.stream,
        IBKR_EVENTS_SUBJECTS=run_names.stream_subjects, **extra,
    )


class Sim:
    """The simulator's /sim control API."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, verify=False, timeout=10)

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, "/sim" + path, json=body if body is not None else {})
        r.raise_for_status()
        return r.json()

    def state(self) -> dict[str, Any]:
        return self.http.get("/sim/state").json()

    def api_requests(self, fragment: str) -> list[dict[str, Any]]:
        return [r for r in self.state()["requests"] if fragment in r["path"]]


class Bridge:
    """A started bridge app plus a NATS client to call it."""

    def __init__(self, app: Any, nc: Any, conn: str) -> None:
        self.app = app
        self.nc = nc
        self.conn = conn
        self.service: BridgeService = app.bridge_service

    async def request(self, op: str, payload: Any, timeout: float = 15.0, public: bool = False) -> dict[str, Any]:
        subject = f"ibkr.{self.conn}.{op}" if public else f"ibkr.{self.conn}.bridge.{op}"
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        msg = await self.nc.request(subject, data, timeout=timeout)
        return json.loads(msg.data)

    async def ok(self, op: str, payload: Any, **kw: Any) -> dict[str, Any]:
        reply = await self.request(op, payload, **kw)
        assert reply["ok"] is True, reply
        return reply["result"]

    async def error(self, op: str, payload: Any, **kw: Any) -> dict[str, Any]:
        reply = await self.request(op, payload, **kw)
        assert reply["ok"] is False, reply
        return reply["error"]


@contextmanager
def own_nats() -> Iterator[str]:
    """A NATS server of its own (JetStream), for a bridge that runs beside the module's.

    One bridge serves every connection it knows on `ibkr.*.bridge.…`, answering NOT_FOUND for the others:
    two bridges with different bootstrap connections on one NATS would answer each other's requests.
    """
    server = start_nats()
    try:
        yield server.url
    finally:
        server.stop()


@asynccontextmanager
async def _own_bridge(cpsim_url: str, run_names: Any, name: str, **extra: Any) -> AsyncIterator[Bridge]:
    """A second bridge with its own settings, on its own NATS, connection id and stream (`<conn>-<name>`)."""
    conn = f"{run_names.conn}-{name}"
    names = SimpleNamespace(conn=conn, stream=f"{run_names.stream}_{name.upper()}",
                            stream_subjects=f"ibkr.{conn}.events.>")
    with own_nats() as nats_url:
        app = build_app(bridge_settings(nats_url, cpsim_url, names, **extra))
        await app.start()
        nc = await nats.connect(nats_url)
        try:
            yield Bridge(app, nc, conn)
        finally:
            await nc.close()
            await app.stop()


@pytest.fixture
def own_bridge(cpsim_url: str, run_names: Any) -> Callable[..., AbstractAsyncContextManager[Bridge]]:
    """`async with own_bridge("name", IBKR_X=...) as bridge:` a second bridge with its own settings (and NATS)."""
    return lambda name, **extra: _own_bridge(cpsim_url, run_names, name, **extra)


@pytest.fixture(scope="session")
def sim(cpsim_url: str) -> Sim:
    return Sim(cpsim_url)


@pytest.fixture(scope="module")
async def bridge(nats_url: str, cpsim_url: str, run_names: Any) -> AsyncIterator[Bridge]:
    """The bridge of this module's tests, on the run's connection. Per module, not per session: its
    subscribers take every connection's bridge subjects, so it must be gone before another suite's stack
    (on another bootstrap connection) runs on this worker's NATS."""
    settings = bridge_settings(nats_url, cpsim_url, run_names, IBKR_BRIDGE_REQUEST_TIMEOUT_S=3,
                               IBKR_BRIDGE_DEADLINE_S=6)
    app = build_app(settings)
    await app.start()
    nc = await nats.connect(nats_url)
    try:
        yield Bridge(app, nc, run_names.conn)
    finally:
        await nc.close()
        await app.stop()


@pytest.fixture
def fresh(sim: Sim, bridge: Bridge) -> Sim:
    """A reset simulator (limits on, no penalty) and a bridge without penalties."""
    sim("POST", "/reset")
    sim("DELETE", "/faults")
    sim("POST", "/limits", {"enabled": True, "clear": True})
    bridge.service.portal.gateway.limiter.core.penalty_until.clear()
    return sim
