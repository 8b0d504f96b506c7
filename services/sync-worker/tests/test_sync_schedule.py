"""When the worker syncs by itself: at start, every interval, after a fill, after `orders.submitted`.

No test here sends `sync.trigger` for the change it checks: the worker must find it on its own.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ibkr_common.envelope import EventEnvelope
from ibkr_common.subjects import Subjects

from .conftest import request

pytestmark = pytest.mark.connected
ACCT = "DU1234567"
STOCK = {"conid": 9100001, "symbol": "ZZST", "sec_type": "STK", "quantity": 100, "avg_price": 150, "market_price": 170}
OTHER = {"conid": 9100002, "symbol": "ZZOT", "sec_type": "STK", "quantity": -20, "avg_price": 40, "market_price": 38}


async def held(nc: Any, names: Any) -> dict[int, Decimal]:
    got = await request(nc, names.subject("positions.get"), {"account_id": ACCT})
    assert got["ok"] is True, got
    return {p["conid"]: Decimal(p["quantity"]) for p in got["result"]["positions"]}


async def wait_rounds(scheduler: Any, at_least: int, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while scheduler.rounds < at_least:
        assert asyncio.get_running_loop().time() < deadline, f"only {scheduler.rounds} sync round(s)"
        await asyncio.sleep(0.05)


async def test_the_worker_syncs_everything_at_start_without_a_trigger(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK, OTHER])
    sim("POST", f"/accounts/{ACCT}", {"cash": 42000})
    async with start_bridge(), start_worker(database_url) as app:
        scheduler = app.context.get("sync_scheduler")
        await wait_rounds(scheduler, 1)
        assert await held(nats_client, names) == {9100001: 100, 9100002: -20}
        account = await request(nats_client, names.subject("account.get"), {"account_id": ACCT})
        assert account["ok"] is True and Decimal(account["result"]["cash"]) == 42000, account
        opened = sorted(e["payload"]["position"]["conid"] for e in events.of("positions.opened"))
        assert opened == [9100001, 9100002]
        assert scheduler.rounds == 1  # the start sync alone: the interval (600 s) has not come


async def test_the_interval_sync_picks_up_a_change_without_a_trigger(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK])
    async with start_bridge(), start_worker(database_url, sync_interval_ms=1000) as app:
        scheduler = app.context.get("sync_scheduler")
        await wait_rounds(scheduler, 1)
        assert await held(nats_client, names) == {9100001: 100}
        sim("POST", f"/positions/{ACCT}", [{**STOCK, "quantity": 150}, OTHER])
        changed = await events.wait_for(lambda e: e["type"] == "positions.changed", timeout=15)
        assert changed["payload"]["position"]["conid"] == 9100001
        await events.wait_for(lambda e: e["type"] == "positions.opened"
                              and e["payload"]["position"]["conid"] == 9100002, timeout=5)
        assert await held(nats_client, names) == {9100001: 150, 9100002: -20}
        assert scheduler.rounds >= 2


async def test_a_fill_seen_brings_a_follow_up_sync_after_the_configured_delay(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    async with start_bridge(), start_worker(database_url, fill_resync_delay_ms=1500) as app:
        scheduler = app.context.get("sync_scheduler")
        await wait_rounds(scheduler, 1)
        assert await scheduler.wait_idle()
        sim("POST", f"/trades/{ACCT}", [{"conid": 9100001, "symbol": "ZZST", "side": "BUY", "quantity": 100,
                                         "price": 150, "order_id": "556001"}])
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["ok"] is True and reply["result"]["accounts"][0]["order_events"] == 1, reply
        after_fill = scheduler.rounds
        # the position shows up a moment after the execution (as IBKR's portfolio lags its trades)
        sim("POST", f"/positions/{ACCT}", [STOCK])
        await events.wait_for(lambda e: e["type"] == "positions.opened", timeout=15)
        assert scheduler.rounds == after_fill + 1
        assert await held(nats_client, names) == {9100001: 100}
        await asyncio.sleep(2.0)
        assert scheduler.rounds == after_fill + 1  # the follow-up saw no new fill: no further sync


def submitted_event(names: Any, source: str) -> bytes:
    envelope = EventEnvelope(type="orders.submitted", conn=names.conn, environment="paper", source=source,
                             occurred_at=datetime.now(UTC), account_id=ACCT, payload={})
    return envelope.model_dump_json().encode()


async def place_through_the_bridge(nc: Any, subjects: Subjects, coid: str) -> None:
    """What compliance does: place a resting (far, non-marketable) limit and confirm its questions."""
    spec = {"conid": 265598, "side": "BUY", "quantity": "1", "order_type": "LMT", "price": "1.00", "tif": "GTC",
            "cOID": coid}
    placed = await request(nc, subjects.bridge("orders.place"), {"account_id": ACCT, "orders": [spec]}, timeout=40)
    for _ in range(5):
        assert placed["ok"] is True, placed
        if placed["result"]["status"] != "confirmation_required":
            break
        reply_id = placed["result"]["confirmation"]["reply_id"]
        placed = await request(nc, subjects.bridge("orders.reply"), {
            "reply_id": reply_id, "confirmed": True, "account_id": ACCT, "client_order_id": coid}, timeout=40)
    assert placed["result"]["status"] == "submitted" and placed["result"]["order_id"], placed


async def test_an_orders_submitted_event_of_another_service_brings_a_sync(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    subjects = Subjects(names.conn)
    subject = subjects.event("orders.submitted", ACCT)
    async with start_bridge(), start_worker(database_url, fill_resync_delay_ms=300) as app:
        scheduler = app.context.get("sync_scheduler")
        await wait_rounds(scheduler, 1)
        assert await scheduler.wait_idle()
        await place_through_the_bridge(nats_client, subjects, "submitted-1")
        rounds = scheduler.rounds
        await nats_client.publish(subject, submitted_event(names, "sync-worker"))  # its own: ignored
        await asyncio.sleep(1.0)
        assert scheduler.rounds == rounds and not events.of("orders.status_changed")
        await nats_client.publish(subject, submitted_event(names, "compliance"))
        seen = await events.wait_for(lambda e: e["type"] == "orders.status_changed", timeout=15)
        assert seen["payload"]["order"]["client_order_id"] == "submitted-1"
        assert scheduler.rounds == rounds + 1
        got = await request(nats_client, names.subject("orders.get"), {"account_id": ACCT, "status": "open"})
        assert [o["client_order_id"] for o in got["result"]["orders"]] == ["submitted-1"]


async def test_a_burst_of_orders_submitted_events_brings_one_follow_up_sync(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    subject = Subjects(names.conn).event("orders.submitted", ACCT)
    # 20 orders in 0.4 s, all inside one follow-up delay with room to spare on a loaded machine
    async with start_bridge(), start_worker(database_url, fill_resync_delay_ms=2000) as app:
        scheduler = app.context.get("sync_scheduler")
        await wait_rounds(scheduler, 1)
        assert await scheduler.wait_idle()
        rounds = scheduler.rounds
        for _ in range(20):
            await nats_client.publish(subject, submitted_event(names, "compliance"))
            await asyncio.sleep(0.02)
        await nats_client.flush()
        await wait_rounds(scheduler, rounds + 1)
        assert await scheduler.wait_idle()
        assert scheduler.rounds == rounds + 1
        await nats_client.publish(subject, submitted_event(names, "compliance"))  # a later order: a sync again
        await wait_rounds(scheduler, rounds + 2)
