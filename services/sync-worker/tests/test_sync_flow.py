"""Whole syncs through the real bridge against cpsim: positions, events, idempotency, bad pages."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from .conftest import request, worker_settings

pytestmark = pytest.mark.connected
ACCT = "DU1234567"
STOCK = {"conid": 9100001, "symbol": "ZZST", "sec_type": "STK", "quantity": 100, "avg_price": 150, "market_price": 170}
OTHER = {"conid": 9100002, "symbol": "ZZOT", "sec_type": "STK", "quantity": -20, "avg_price": 40, "market_price": 38}


async def test_trigger_answers_after_the_sync_and_positions_get_has_them(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK, OTHER])
    async with start_bridge(), start_worker(database_url):
        reply = await request(nats_client, names.subject("sync.trigger"), {"account_id": ACCT})
        assert reply["ok"] is True, reply
        assert reply["result"]["positions"] == 2
        got = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT})
        assert got["ok"] is True and got["result"]["synced_at"]
        by_conid = {p["conid"]: p for p in got["result"]["positions"]}
        assert Decimal(by_conid[9100001]["quantity"]) == 100
        assert Decimal(by_conid[9100001]["unrealized_pnl"]) == 2000
        assert Decimal(by_conid[9100002]["unrealized_pnl"]) == 40
        opened = await events.wait_for(lambda e: e["type"] == "positions.opened")
        assert opened["account_id"] == ACCT and opened["source"] == "sync-worker"


async def test_a_second_sync_without_changes_writes_and_publishes_nothing(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK])
    async with start_bridge(), start_worker(database_url):
        first = await request(nats_client, names.subject("sync.trigger"), {})
        assert first["ok"] is True, first
        await events.wait_for(lambda e: e["type"] == "positions.opened")
        second = await request(nats_client, names.subject("sync.trigger"), {})
        assert second["ok"] is True, second
        assert second["result"]["rows_written"] == 0 and second["result"]["events"] == 0
        seen = len(events.items)
        await asyncio.sleep(1.0)
        assert [e["type"] for e in events.items[seen:] if e["source"] == "sync-worker"] == []


async def test_emptied_positions_are_closed_after_a_complete_read(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK, OTHER])
    async with start_bridge(), start_worker(database_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        sim("POST", f"/positions/{ACCT}", [OTHER])
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["result"]["accounts"][0]["closed"] == 1
        closed = await events.wait_for(lambda e: e["type"] == "positions.closed")
        assert closed["payload"]["position"]["conid"] == 9100001
        got = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT})
        assert [p["conid"] for p in got["result"]["positions"]] == [9100002]


async def test_a_failed_page_keeps_every_position_and_publishes_a_sync_problem(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK, OTHER])
    async with start_bridge(), start_worker(database_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        sim("POST", f"/positions/{ACCT}", [])
        sim("POST", "/faults", {"path_glob": f"*/portfolio/{ACCT}/positions/0", "status": 500, "count": 5})
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["ok"] is True, reply
        assert any(p["kind"] == "positions_page_failed" for p in reply["result"]["problems"])
        problem = await events.wait_for(lambda e: e["type"] == "sync.problem")
        assert problem["payload"]["kind"] == "positions_page_failed"
        got = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT})
        assert sorted(p["conid"] for p in got["result"]["positions"]) == [9100001, 9100002]
        assert events.of("positions.closed") == []


async def test_account_get_answers_the_summary_with_synced_at(
    sim, names, nats_client, sqlite_url, start_bridge, start_worker
):
    sim("POST", f"/accounts/{ACCT}", {"cash": 50000, "day_trades_remaining": 2})
    async with start_bridge(), start_worker(sqlite_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {"account_id": ACCT}))["ok"]
        got = await request(nats_client, names.subject("account.get"), {"account_id": ACCT})
        assert got["ok"] is True, got
        assert got["result"]["synced_at"] and got["result"]["day_trades_remaining"] == 2
        assert [got["result"][f"day_trades_remaining_t{k}"] for k in range(1, 5)] == [2, 2, 2, 2]
        assert Decimal(got["result"]["cash"]) == 50000
        assert Decimal(got["result"]["settled_cash"]) == 50000 and Decimal(got["result"]["maintenance_margin"]) == 0


async def test_account_get_carries_the_configured_options_level(
    sim, names, nats_client, sqlite_url, start_bridge, start_worker
):
    async with start_bridge(), start_worker(sqlite_url, options_levels=f"{ACCT.lower()}=3,U1111111=1"):
        assert (await request(nats_client, names.subject("sync.trigger"), {"account_id": ACCT}))["ok"]
        got = await request(nats_client, names.subject("account.get"), {"account_id": ACCT})
    assert got["ok"] is True and got["result"]["options_level"] == 3, got


def test_options_levels_setting_refuses_an_unreadable_entry(names, nats_url, sqlite_url):
    with pytest.raises(ValueError, match="DU1=five"):
        worker_settings(names, nats_url, sqlite_url, options_levels="DU1=five")
    assert worker_settings(names, nats_url, sqlite_url, options_levels="*=2").options_level_of("DU9") == 2


async def test_unknown_account_is_not_found(sim, names, nats_client, sqlite_url, start_bridge, start_worker):
    async with start_bridge(), start_worker(sqlite_url):
        got = await request(nats_client, names.subject("account.get"), {"account_id": "U0000000"})
        assert got["ok"] is False and got["error"]["code"] == "NOT_FOUND"
        trig = await request(nats_client, names.subject("sync.trigger"), {"account_id": "U0000000"})
        assert trig["ok"] is False and trig["error"]["code"] == "NOT_FOUND"
