"""One bridge, many connections: a connection registered at run time is served by its own gateway client and
its gateway's rate limiter (shared by every connection on that gateway), moved when its gateway changes and
dropped when it is removed, without a restart.

Three cpsim processes: the bootstrap connection's (the run's cpsim), one for the connections added here and
one whose endpoint a test puts in the penalty box (the bridge remembers that for its run). The
bridge runs on a NATS server of its own (it takes every connection's subjects). Connections are announced
with the registry's own event (`ibkr_testkit.connections.announce_connection`)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest

from cpsim.testing import CpsimHandle, start_cpsim
from cpsim.tls import self_signed
from ibkr_common.ops import observability_of
from ibkr_contract.connections import ConnectionView, GatewaySettings
from ibkr_gateway_bridge.app import build_app
from ibkr_gateway_bridge.connections import ServedConnections
from ibkr_testkit.connections import announce_connection, connection_view

from .conftest import Sim, bridge_settings, own_nats

pytestmark = pytest.mark.connected

AAPL = 265598
ACCT = "DU1234567"
USER = "user-b"
_ids = itertools.count(1)


class Stack(SimpleNamespace):
    """The bridge app, a NATS client, the two simulators and the bootstrap connection id."""

    app: Any
    nc: Any
    conn: str
    first: Sim
    second: Sim
    second_url: str
    first_url: str

    @property
    def served(self) -> ServedConnections:
        return self.app.served  # type: ignore[no-any-return]

    async def request(self, conn: str, op: str, payload: Any, *, public: bool = False,
                      timeout: float = 15.0) -> dict[str, Any]:
        subject = f"ibkr.{conn}.{op}" if public else f"ibkr.{conn}.bridge.{op}"
        msg = await self.nc.request(subject, json.dumps(payload).encode(), timeout=timeout)
        return json.loads(msg.data)  # type: ignore[no-any-return]

    async def ok(self, conn: str, op: str, payload: Any, **kw: Any) -> dict[str, Any]:
        reply = await self.request(conn, op, payload, **kw)
        assert reply["ok"] is True, reply
        return reply["result"]  # type: ignore[no-any-return]

    async def announce(self, view: ConnectionView, kind: str = "registered") -> None:
        await announce_connection(self.nc, view, kind)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def second_cpsim() -> Iterator[CpsimHandle]:
    with start_cpsim() as handle:
        yield handle


@pytest.fixture(scope="module")
def boxed_cpsim() -> Iterator[CpsimHandle]:
    with start_cpsim() as handle:
        yield handle


@pytest.fixture(scope="module")
async def stack(cpsim_url: str, second_cpsim: CpsimHandle, run_names: Any) -> AsyncIterator[Stack]:
    names = SimpleNamespace(conn=run_names.conn, stream=f"{run_names.stream}_CONNS",
                            stream_subjects="ibkr.*.events.>")
    with own_nats() as nats_url:
        app = build_app(bridge_settings(nats_url, cpsim_url, names, IBKR_BRIDGE_REQUEST_TIMEOUT_S=3,
                                        IBKR_BRIDGE_DEADLINE_S=6, IBKR_HTTP_PORT=0))
        await app.start()
        nc = await nats.connect(nats_url)
        try:
            yield Stack(app=app, nc=nc, conn=run_names.conn, first=Sim(cpsim_url), second=Sim(second_cpsim.url),
                        first_url=cpsim_url, second_url=second_cpsim.url)
        finally:
            await nc.close()
            await app.stop()


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    for sim in (stack.first, stack.second):
        sim("POST", "/reset")
        sim("DELETE", "/faults")
    return stack


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def info_calls(sim: Sim) -> int:
    """How many contract-info calls the simulator received (its request log)."""
    return len(sim.api_requests(f"/iserver/contract/{AAPL}/info"))


async def add_connection(stack: Stack, gateway_url: str, **extra: Any) -> ConnectionView:
    """Register a new connection on `gateway_url` and wait until the bridge serves it."""
    conn = f"{stack.conn}-b{next(_ids)}"
    view = connection_view(conn, user_id=USER, gateway_url=gateway_url, **extra)
    await stack.announce(view)

    async def served() -> bool:
        return stack.served.get(conn) is not None

    await eventually(served, f"connection {conn} served")
    return view


def moved(view: ConnectionView, gateway_url: str, **gateway: Any) -> ConnectionView:
    """The same connection, updated a second later, with its gateway at `gateway_url`."""
    host, port = gateway_url.split("://", 1)[1].rsplit(":", 1)
    settings = GatewaySettings(host=host, port=int(port), ssl=gateway_url.startswith("https"), **gateway)
    return view.model_copy(update={"gateway": settings, "updated_at": view.updated_at + timedelta(seconds=1)})


async def test_each_connection_reaches_only_its_own_gateway(fresh: Stack) -> None:
    view = await add_connection(fresh, fresh.second_url, environment="live")
    second = view.connection
    js = fresh.nc.jetstream()
    events = await js.subscribe(f"ibkr.{second}.events.gateway.call", ordered_consumer=True, deliver_policy="new")

    a0, b0 = info_calls(fresh.first), info_calls(fresh.second)
    assert (await fresh.ok(second, "contracts.info", {"conid": AAPL}))["symbol"] == "AAPL"
    assert (info_calls(fresh.first), info_calls(fresh.second)) == (a0, b0 + 1)
    assert (await fresh.ok(fresh.conn, "contracts.info", {"conid": AAPL}))["symbol"] == "AAPL"
    assert (info_calls(fresh.first), info_calls(fresh.second)) == (a0 + 1, b0 + 1)

    # the public contracts subject and the status subject serve it too
    searches = len(fresh.second.api_requests("/iserver/secdef/search"))
    found = await fresh.ok(second, "contracts.search", {"symbol": "AAPL"}, public=True)
    assert found["contracts"][0]["conid"] == AAPL
    assert len(fresh.second.api_requests("/iserver/secdef/search")) == searches + 1
    status = await fresh.ok(second, "status.gateway-bridge", {}, public=True)
    assert status["connection"] == second and status["details"]["gateway"]["url"] == fresh.second_url
    assert (await fresh.ok(second, "accounts.list", {}))["accounts"] == [ACCT]

    # its gateway.call events carry its connection and environment
    event = json.loads((await events.next_msg(timeout=5)).data)
    await events.unsubscribe()
    assert event["conn"] == second and event["environment"] == "live" and event["type"] == "gateway.call"

    # its figures carry its connection; readiness reports it beside the bootstrap gateway
    ops = observability_of(fresh.app)
    async with httpx.AsyncClient(base_url=ops.url) as http:
        metrics = (await http.get("/metrics")).text
        ready = (await http.get("/readyz")).json()
    assert f'connection="{second}"' in metrics and f'connection="{fresh.conn}"' in metrics
    assert ready["gateway"]["url"] == fresh.first_url
    assert ready["connections"][second]["url"] == fresh.second_url
    assert ready["connections"][second]["reachable"] is True
    await fresh.announce(view, "removed")


async def test_each_gateway_has_its_own_rate_limiter(fresh: Stack, boxed_cpsim: CpsimHandle) -> None:
    view = await add_connection(fresh, boxed_cpsim.url)
    second, sim = view.connection, Sim(boxed_cpsim.url)
    limiter = fresh.served.get(second).gateway.limiter  # type: ignore[union-attr]
    assert limiter is not fresh.served.bootstrap.gateway.limiter
    # that gateway puts its trades endpoint in the penalty box (calls from outside the bridge)
    with httpx.Client(base_url=boxed_cpsim.url, verify=False) as direct:
        for _ in range(3):
            direct.get("/v1/api/iserver/account/trades")
    boxed = await fresh.request(second, "trades.list", {}, timeout=25)
    assert boxed["ok"] is False and boxed["error"]["code"] == "RATE_LIMITED", boxed
    calls = len(sim.api_requests("/iserver/account/trades"))
    again = await fresh.request(second, "trades.list", {}, timeout=25)
    assert again["ok"] is False and again["error"]["code"] == "RATE_LIMITED"
    assert len(sim.api_requests("/iserver/account/trades")) == calls  # its limiter keeps it away

    # the first connection's limiter knows nothing of it: its trades call goes to its own gateway
    before = len(fresh.first.api_requests("/iserver/account/trades"))
    granted = limiter.granted
    assert "trades" in await fresh.ok(fresh.conn, "trades.list", {}, timeout=25)
    assert len(fresh.first.api_requests("/iserver/account/trades")) == before + 1
    assert limiter.granted == granted  # the second's limiter saw none of the first's calls
    await fresh.announce(view, "removed")


async def _trades_twice(stack: Stack, first: str, second: str) -> list[int]:
    """`trades.list` (IBKR: one a 5 s) on `first`, then at once on `second`; the second gateway's statuses."""
    assert "trades" in await stack.ok(first, "trades.list", {}, timeout=25)
    assert "trades" in await stack.ok(second, "trades.list", {}, timeout=25)
    return [r["status"] for r in stack.second.api_requests("/iserver/account/trades")]


async def test_connections_on_one_gateway_share_its_rate_limiter(fresh: Stack) -> None:
    """IBKR paces and boxes per gateway: a second connection registered on a gateway already served (here
    the bootstrap one's too) goes through the same limiter, so together they keep one call per 5 s."""
    one = (await add_connection(fresh, fresh.second_url)).connection
    two = (await add_connection(fresh, fresh.second_url)).connection
    assert await _trades_twice(fresh, one, two) == [200, 200]  # the second call waited its turn: no 429
    assert fresh.second("GET", "/limits")["violations"] == 0
    assert fresh.served.get(two).gateway.limiter is fresh.served.get(one).gateway.limiter  # type: ignore[union-attr]
    on_bootstrap = (await add_connection(fresh, fresh.first_url)).connection
    assert fresh.served.get(on_bootstrap).gateway.limiter is fresh.served.bootstrap.gateway.limiter  # type: ignore[union-attr]
    for conn in (one, two, on_bootstrap):
        await fresh.announce(connection_view(conn, user_id=USER, gateway_url=fresh.second_url), "removed")


async def test_a_connection_registered_again_keeps_its_gateways_pacing(fresh: Stack) -> None:
    """Deleted and registered again within 5 s of its last trades call, a connection still waits its turn."""
    first = await add_connection(fresh, fresh.second_url)
    assert "trades" in await fresh.ok(first.connection, "trades.list", {}, timeout=25)
    await fresh.announce(first, "removed")

    async def dropped() -> bool:
        return fresh.served.get(first.connection) is None

    await eventually(dropped, f"{first.connection} dropped")
    again = connection_view(first.connection, user_id=USER, gateway_url=fresh.second_url)
    await fresh.announce(again)

    async def served() -> bool:
        return fresh.served.get(again.connection) is not None

    await eventually(served, f"{again.connection} served again")
    assert "trades" in await fresh.ok(again.connection, "trades.list", {}, timeout=25)
    statuses = [r["status"] for r in fresh.second.api_requests("/iserver/account/trades")]
    assert statuses == [200, 200], statuses  # the second call waited its turn: no 429
    assert fresh.second("GET", "/limits")["violations"] == 0
    await fresh.announce(again, "removed")


async def test_a_removed_connection_answers_not_found_and_closes_its_client(fresh: Stack) -> None:
    view = await add_connection(fresh, fresh.second_url)
    second = view.connection
    served = fresh.served.get(second)
    assert served is not None
    assert (await fresh.ok(second, "session.status", {}))["authenticated"] is True
    await fresh.announce(view, "removed")

    async def dropped() -> bool:
        reply = await fresh.request(second, "session.status", {})
        return reply["ok"] is False and reply["error"]["code"] == "NOT_FOUND"

    await eventually(dropped, f"{second} answers NOT_FOUND")
    reply = await fresh.request(second, "accounts.summary", {"account_id": ACCT})
    assert reply["error"]["code"] == "NOT_FOUND" and reply["error"]["details"][0]["field"] == "connection"
    public = await fresh.request(second, "contracts.search", {"symbol": "AAPL"}, public=True)
    assert public["error"]["code"] == "NOT_FOUND"
    status = await fresh.request(second, "status.gateway-bridge", {}, public=True)
    assert status["error"]["code"] == "NOT_FOUND"

    async def closed() -> bool:
        return served.gateway.http.is_closed

    await eventually(closed, "its gateway client closed")
    # the same process serves the bootstrap connection as before
    assert (await fresh.ok(fresh.conn, "session.status", {}))["authenticated"] is True
    unknown = await fresh.request(f"{fresh.conn}-never", "session.status", {})
    assert unknown["error"]["code"] == "NOT_FOUND"


async def test_a_new_gateway_port_moves_the_connections_calls(fresh: Stack) -> None:
    view = await add_connection(fresh, fresh.second_url)
    second = view.connection
    old = fresh.served.get(second)
    assert old is not None
    a0, b0 = info_calls(fresh.first), info_calls(fresh.second)
    await fresh.ok(second, "contracts.info", {"conid": AAPL})
    assert (info_calls(fresh.first), info_calls(fresh.second)) == (a0, b0 + 1)

    await fresh.announce(moved(view, fresh.first_url), "updated")

    async def rebuilt() -> bool:
        now = fresh.served.get(second)
        return now is not None and now is not old

    await eventually(rebuilt, "rebuilt on the new port")
    await fresh.ok(second, "contracts.info", {"conid": AAPL})
    assert (info_calls(fresh.first), info_calls(fresh.second)) == (a0 + 1, b0 + 1)
    assert fresh.served.get(second).gateway.limiter is not old.gateway.limiter  # type: ignore[union-attr]

    async def closed() -> bool:
        return old.gateway.http.is_closed

    await eventually(closed, "the old gateway client closed")
    await fresh.announce(view, "removed")


async def test_a_new_environment_on_the_same_gateway_keeps_its_pacing(fresh: Stack) -> None:
    """Rebuilt for its environment, a connection keeps its limiter: the gateway login is the same, so a
    one-per-5-s endpoint called again within 5 s waits instead of earning a 429 and the penalty box."""
    view = await add_connection(fresh, fresh.second_url)
    second = view.connection
    old = fresh.served.get(second)
    assert old is not None
    assert "trades" in await fresh.ok(second, "trades.list", {})
    first_call = time.monotonic()
    live = view.model_copy(update={"environment": "live", "updated_at": view.updated_at + timedelta(seconds=1)})
    await fresh.announce(live, "updated")

    async def rebuilt() -> bool:
        now = fresh.served.get(second)
        return now is not None and now is not old

    await eventually(rebuilt, "rebuilt for its new environment")
    assert fresh.served.get(second).settings.default_environment == "live"  # type: ignore[union-attr]
    assert fresh.served.get(second).gateway.limiter is old.gateway.limiter  # type: ignore[union-attr]
    await asyncio.sleep(max(0.0, 2.5 - (time.monotonic() - first_call)))  # well within the 5 s
    assert "trades" in await fresh.ok(second, "trades.list", {})
    statuses = [r["status"] for r in fresh.second.api_requests("/iserver/account/trades")]
    assert statuses == [200, 200], statuses  # the second call waited its turn: no 429
    assert fresh.second("GET", "/limits")["violations"] == 0
    await fresh.announce(live, "removed")


def _certificate(url: str) -> str:
    """The simulator's own (self-signed) certificate, as it presents it."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return ssl.get_server_certificate((host, int(port)))


async def test_a_ca_from_the_registry_verifies_its_gateway_in_memory(fresh: Stack, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    pem = _certificate(fresh.second_url)
    trusted = await add_connection(fresh, fresh.second_url)
    await fresh.announce(moved(trusted, fresh.second_url, ca_pem=pem), "updated")

    async def verified() -> bool:
        served = fresh.served.get(trusted.connection)
        return served is not None and served.connection.gateway.ca_pem == pem

    await eventually(verified, "rebuilt with its CA")
    assert (await fresh.ok(trusted.connection, "session.status", {}))["authenticated"] is True

    other, _ = self_signed(tmp_path)  # a CA that did not sign the second gateway's certificate
    wrong = await add_connection(fresh, fresh.second_url)
    await fresh.announce(moved(wrong, fresh.second_url, ca_pem=other.read_text()), "updated")

    async def rebuilt() -> bool:
        served = fresh.served.get(wrong.connection)
        return served is not None and served.connection.gateway.ca_pem is not None

    await eventually(rebuilt, "rebuilt with the wrong CA")
    error = (await fresh.request(wrong.connection, "session.status", {}))["error"]
    assert error["code"] == "GATEWAY_UNAVAILABLE" and error["details"]["reason"] == "tls_verify_failed", error
    assert "gateway.ca_pem" in error["message"] and "BEGIN CERTIFICATE" not in json.dumps(error)

    # a PEM the ssl module cannot load trusts nothing (never no verification), and is not logged
    garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    unusable = await add_connection(fresh, fresh.second_url)
    with caplog.at_level(logging.INFO):
        await fresh.announce(moved(unusable, fresh.second_url, ca_pem=garbage), "updated")

        async def unloadable() -> bool:
            served = fresh.served.get(unusable.connection)
            return served is not None and served.connection.gateway.ca_pem == garbage

        await eventually(unloadable, "rebuilt with an unusable CA")
        error = (await fresh.request(unusable.connection, "session.status", {}))["error"]
    assert error["code"] == "GATEWAY_UNAVAILABLE" and error["details"]["reason"] == "tls_verify_failed", error
    said = [r.getMessage() for r in caplog.records if unusable.connection in r.getMessage()]
    assert any("not a usable PEM" in line for line in said), said
    assert not any("bm90IGEgY2VydGlmaWNhdGU" in r.getMessage() for r in caplog.records)
    for view in (trusted, wrong, unusable):
        await fresh.announce(view, "removed")
