"""One sync-worker syncs every registered connection, each on its own schedule, picked up and dropped at run time.

Two cpsim gateways (the run's and one started here, with another account) behind ONE real gateway-bridge
serving both connections, as in production; the second connection, owned by another user, is announced
while the bridge and the worker run (the registry's `connection.registered` event), so both learn it at
run time, and later removed. Rows are read back on PostgreSQL under RLS.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from faststream import FastStream, TestApp
from sqlalchemy import select

from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.models import Position
from ibkr_sync_worker.app import build_app
from ibkr_testkit.connections import announce_connection, connection_view

from .conftest import Events, Names, Sim, request, worker_settings

pytestmark = pytest.mark.connected
ACCT, OTHER_ACCT = "DU1234567", "U7000001"
STOCK = {"conid": 9100001, "symbol": "ZZST", "sec_type": "STK", "quantity": 100, "avg_price": 150, "market_price": 170}
OTHER = {"conid": 9100002, "symbol": "ZZOT", "sec_type": "STK", "quantity": -20, "avg_price": 40, "market_price": 38}


@pytest.fixture
def second_gateway() -> Iterator[Sim]:
    """A second cpsim of its own, holding one account U7000001 (another user's login)."""
    from cpsim.testing import start_cpsim

    handle = start_cpsim()
    try:
        sim = Sim(handle.url)
        sim("POST", "/reset", {"accounts": [OTHER_ACCT]})
        sim("POST", "/market", {"walk": False})
        sim("POST", "/limits", {"enabled": False})
        yield sim
    finally:
        handle.stop()


@pytest.fixture
async def both_events(nats_client: Any, names: Names) -> AsyncIterator[Events]:
    """Every event of both connections."""
    import json

    collected = Events()

    async def on_msg(msg: Any) -> None:
        collected.items.append(json.loads(msg.data))

    subs = [await nats_client.subscribe(f"ibkr.{conn}.events.>", cb=on_msg) for conn in (names.conn, second(names))]
    yield collected
    for sub in subs:
        await sub.unsubscribe()


def second(names: Names) -> str:
    return f"{names.conn}b"


def stream_subjects(names: Names) -> str:
    return f"ibkr.{names.conn}.events.>,ibkr.{second(names)}.events.>"


@asynccontextmanager
async def bridge(names: Names, nats_url: str, gateway_url: str) -> AsyncIterator[FastStream]:
    """The real gateway-bridge (in-process): bootstrap connection `names.conn` on `gateway_url`, and the test's
    second connection once announced (one bridge for every connection, as in production)."""
    from ibkr_gateway_bridge.app import build_app as build_bridge
    from ibkr_gateway_bridge.settings import BridgeSettings

    scheme, rest = gateway_url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    settings = BridgeSettings(nats_url=nats_url, connection=names.conn, events_stream=names.stream,
                              events_subjects=stream_subjects(names), gateway_host=host, gateway_port=int(port),
                              gateway_ssl=scheme == "https", serve_connections=f"{re.escape(names.conn)}b?")
    async with TestApp(build_bridge(settings)) as app:
        yield app


@asynccontextmanager
async def worker(names: Names, nats_url: str, database_url: str, run_prefix: str, **extra: Any
                 ) -> AsyncIterator[FastStream]:
    """The sync-worker in-process: bootstrap connection `names.conn` owned by alice, serving this run's others."""
    values: dict[str, Any] = {"user_id": "alice", "serve_connections": f"{run_prefix}-.*",
                              "events_subjects": stream_subjects(names)} | extra
    settings = worker_settings(names, nats_url, database_url, **values)
    async with TestApp(build_app(settings)) as app:
        yield app


async def until_ok(nc: Any, subject: str, body: dict[str, Any], want_ok: bool = True,
                   timeout: float = 30.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        reply = await request(nc, subject, body, timeout=30)
        if reply["ok"] is want_ok or asyncio.get_running_loop().time() > deadline:
            return reply
        await asyncio.sleep(0.1)


async def wait_until(condition: Any, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def positions_as(database_url: str, user_id: str, conn: str) -> list[tuple[str, str, int]]:
    """(user_id, account, conid) of the positions of `conn` that `user_id` may see (RLS)."""
    engine = make_engine(database_url)
    try:
        async with user_transaction(make_sessionmaker(engine), user_id) as session:
            rows = (await session.execute(select(Position.user_id, Position.account_id, Position.conid)
                                          .where(Position.connection == conn))).all()
    finally:
        await engine.dispose()
    return sorted((u, a, c) for u, a, c in rows)


async def test_a_connection_announced_at_run_time_gets_its_own_schedule_rows_and_owner_check(
    sim, second_gateway, names, both_events, nats_client, nats_url, database_url, cpsim_url, run_names
):
    other = second(names)
    sim("POST", f"/positions/{ACCT}", [STOCK])
    second_gateway("POST", f"/positions/{OTHER_ACCT}", [OTHER])
    second_url = str(second_gateway.client.base_url).rstrip("/")
    view = connection_view(other, user_id="bob", gateway_url=second_url, environment="live",
                           accounts=[{"account_id": OTHER_ACCT, "options_level": 2}])
    async with (bridge(names, nats_url, cpsim_url),
                worker(names, nats_url, database_url, run_names.conn, sync_interval_ms=1000)):
        unknown = await request(nats_client, f"ibkr.{other}.positions.get", {"account_id": OTHER_ACCT})
        assert unknown["ok"] is False and unknown["error"]["code"] == "NOT_FOUND", unknown
        assert second_gateway.requests_to("/portfolio") == 0

        await announce_connection(nats_client, view)
        served = await until_ok(nats_client, f"ibkr.{other}.status.sync-worker", {})
        assert served["ok"] is True, served
        synced = await request(nats_client, f"ibkr.{other}.sync.trigger", {"user_id": "bob"})
        assert synced["ok"] is True and synced["result"]["positions"] == 1, synced
        got = await request(nats_client, f"ibkr.{other}.positions.get", {"account_id": OTHER_ACCT, "user_id": "bob"})
        assert [(p["conid"], Decimal(p["quantity"])) for p in got["result"]["positions"]] == [(9100002, -20)]
        account = await request(nats_client, f"ibkr.{other}.account.get", {"account_id": OTHER_ACCT})
        assert account["result"]["options_level"] == 2  # the registry's per-account setting
        opened = await both_events.wait_for(lambda e: e["type"] == "positions.opened" and e["conn"] == other)
        assert opened["environment"] == "live" and opened["user_id"] == "bob" and opened["account_id"] == OTHER_ACCT
        status = await request(nats_client, f"ibkr.{other}.status.sync-worker", {})
        assert status["result"]["connection"] == other and status["result"]["details"]["accounts"] == [OTHER_ACCT]

        # the bootstrap connection is synced as before, on its own gateway, under its own owner
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"] is True
        first = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT})
        assert [p["conid"] for p in first["result"]["positions"]] == [9100001]
        assert sim.requests_to(OTHER_ACCT) == 0 and second_gateway.requests_to(ACCT) == 0
        assert await positions_as(database_url, "bob", other) == [("bob", OTHER_ACCT, 9100002)]
        assert await positions_as(database_url, "alice", other) == []  # RLS: not alice's rows
        assert await positions_as(database_url, "alice", names.conn) == [("alice", ACCT, 9100001)]

        # a user who does not own the connection is refused, whatever the command
        for command, body in [("positions.get", {"account_id": OTHER_ACCT}), ("orders.get", {"account_id": OTHER_ACCT}),
                              ("account.get", {"account_id": OTHER_ACCT}), ("sync.trigger", {}),
                              ("positions.close", {"account_id": OTHER_ACCT, "conid": 9100002}),
                              ("positions.exercise", {"account_id": OTHER_ACCT, "conid": 9100002})]:
            refused = await request(nats_client, f"ibkr.{other}.{command}", body | {"user_id": "alice"})
            assert refused["ok"] is False and refused["error"]["code"] == "FORBIDDEN", (command, refused)
            assert refused["error"]["details"][0]["field"] == "user_id"
        # the bootstrap connection keeps today's behaviour: ownership is not enforced unless switched on
        assert (await request(nats_client, names.subject("positions.get"),
                              {"account_id": ACCT, "user_id": "someone-else"}))["ok"] is True

        # its own interval (1 s here; a round lasts ~5 s, the gateway's pace of trades reads): the second
        # gateway is read again and again while the connection is registered
        before = second_gateway.requests_to("/portfolio")
        await wait_until(lambda: second_gateway.requests_to("/portfolio") > before, 15.0)

        await announce_connection(nats_client, view, kind="removed")
        gone = await until_ok(nats_client, f"ibkr.{other}.positions.get", {"account_id": OTHER_ACCT}, want_ok=False)
        assert gone["error"]["code"] == "NOT_FOUND", gone
        assert (await request(nats_client, f"ibkr.{other}.sync.trigger", {}))["error"]["code"] == "NOT_FOUND"
        assert (await request(nats_client, f"ibkr.{other}.status.sync-worker", {}))["error"]["code"] == "NOT_FOUND"
        await asyncio.sleep(1.0)  # reads already on their way when it stopped
        stopped_at = second_gateway.requests_to("/portfolio")
        await asyncio.sleep(6.0)  # longer than a round
        assert second_gateway.requests_to("/portfolio") == stopped_at  # its loop is gone
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"] is True


async def test_ownership_of_the_bootstrap_connection_when_switched_on(
    sim, names, nats_client, nats_url, database_url, cpsim_url, run_names
):
    sim("POST", f"/positions/{ACCT}", [STOCK])
    async with (bridge(names, nats_url, cpsim_url),
                worker(names, nats_url, database_url, run_names.conn, enforce_ownership=True)):
        assert (await request(nats_client, names.subject("sync.trigger"), {"user_id": "alice"}))["ok"] is True
        owner = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT, "user_id": "alice"})
        assert owner["ok"] is True, owner
        refused = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT, "user_id": "eve"})
        assert refused["error"]["code"] == "FORBIDDEN", refused
        anonymous = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT})
        assert anonymous["ok"] is True  # a caller that states no user_id is not checked
