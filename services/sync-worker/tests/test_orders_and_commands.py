"""Orders from other apps, positions.close through orders.submit, exercise, pause while logged out."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from .conftest import request

pytestmark = pytest.mark.connected
ACCT = "DU1234567"
STOCK = {"conid": 9100001, "symbol": "ZZST", "sec_type": "STK", "quantity": 100, "avg_price": 150, "market_price": 170}
SHORT = {"conid": 9100003, "symbol": "ZZSH", "sec_type": "STK", "quantity": -30, "avg_price": 20, "market_price": 21}


async def test_executions_from_another_app_become_a_filled_order_and_are_announced(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/trades/{ACCT}", [
        {"conid": 9100001, "symbol": "ZZST", "side": "BUY", "quantity": 60, "price": 150, "order_id": "555001"},
        {"conid": 9100001, "symbol": "ZZST", "side": "BUY", "quantity": 40, "price": 151, "order_id": "555001"},
    ])
    async with start_bridge(), start_worker(database_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        got = await request(nats_client, names.subject("orders.get"), {"account_id": ACCT, "status": "filled"})
        assert got["ok"] is True, got
        [order] = got["result"]["orders"]
        assert order["order_id"] == "555001" and Decimal(order["filled_quantity"]) == 100
        assert Decimal(order["avg_fill_price"]) == Decimal("150.4") and len(order["fills"]) == 2
        filled = await events.wait_for(lambda e: e["type"] == "orders.filled")
        assert filled["account_id"] == ACCT and filled["payload"]["order"]["order_id"] == "555001"
        open_orders = await request(nats_client, names.subject("orders.get"), {"account_id": ACCT, "status": "open"})
        assert open_orders["result"]["orders"] == []


async def test_executions_of_every_linked_account_are_read_not_only_the_selected_ones(
    sim, names, nats_client, sqlite_url, start_bridge, start_worker
):
    other = "DU7654321"
    sim("POST", f"/accounts/{other}", {"cash": 30000})
    sim("POST", f"/trades/{other}", [
        {"conid": 9100001, "symbol": "ZZST", "side": "BUY", "quantity": 5, "price": 150, "order_id": "556001"},
    ])
    async with start_bridge(), start_worker(sqlite_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        got = await request(nats_client, names.subject("orders.get"), {"account_id": other, "status": "filled"})
        mine = await request(nats_client, names.subject("orders.get"), {"account_id": ACCT, "status": "filled"})
    assert [o["order_id"] for o in got["result"]["orders"]] == ["556001"], got
    assert mine["result"]["orders"] == []


async def test_close_without_compliance_running_is_a_clear_error(
    sim, names, nats_client, sqlite_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK])
    async with start_bridge(), start_worker(sqlite_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        reply = await request(nats_client, names.subject("positions.close"),
                              {"account_id": ACCT, "conid": 9100001, "user_id": "alice"})
        assert reply["ok"] is False and reply["error"]["code"] == "GATEWAY_UNAVAILABLE"
        assert "orders.submit" in reply["error"]["message"]


async def test_close_submits_the_opposite_side_for_the_whole_position_through_orders_submit(
    sim, names, nats_client, sqlite_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK, SHORT])
    received: list[dict[str, Any]] = []

    async def compliance(msg: Any) -> None:
        order = json.loads(msg.data)
        received.append(order)
        await msg.respond(json.dumps({"ok": True, "result": {"client_order_id": order["client_order_id"],
                                                             "decision": "allow", "status": "submitted"}}).encode())

    sub = await nats_client.subscribe(names.subject("orders.submit"), cb=compliance)
    try:
        async with start_bridge(), start_worker(sqlite_url):
            assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
            long_close = await request(nats_client, names.subject("positions.close"),
                                       {"account_id": ACCT, "conid": 9100001, "user_id": "alice",
                                        "client_order_id": "close-1"})
            short_close = await request(nats_client, names.subject("positions.close"),
                                        {"account_id": ACCT, "conid": 9100003, "user_id": "alice",
                                         "order_type": "LMT", "limit_price": "21.5", "quantity": "10"})
    finally:
        await sub.unsubscribe()
    assert long_close["ok"] is True and long_close["result"]["status"] == "submitted"
    first, second = received
    assert first == {"client_order_id": "close-1", "user_id": "alice", "account_id": ACCT, "environment": "paper",
                     "instrument": {"conid": 9100001}, "side": "SELL", "quantity": "100", "order_type": "MKT",
                     "tif": "DAY", "position_effect": "close"}
    assert (second["side"], second["quantity"], second["limit_price"]) == ("BUY", "10", "21.5")
    assert short_close["result"]["order_request"]["position_effect"] == "close"


async def test_close_refuses_more_than_the_position(sim, names, nats_client, sqlite_url, start_bridge, start_worker):
    sim("POST", f"/positions/{ACCT}", [STOCK])
    async with start_bridge(), start_worker(sqlite_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        reply = await request(nats_client, names.subject("positions.close"),
                              {"account_id": ACCT, "conid": 9100001, "user_id": "alice", "quantity": "101"})
        assert reply["ok"] is False and reply["error"]["code"] == "VALIDATION_ERROR"
        missing = await request(nats_client, names.subject("positions.close"),
                                {"account_id": ACCT, "conid": 42, "user_id": "alice"})
        assert missing["ok"] is False and missing["error"]["code"] == "NOT_FOUND"


async def test_exercise_is_not_supported_with_an_explanation(names, nats_client, sqlite_url, start_worker):
    async with start_worker(sqlite_url):
        reply = await request(nats_client, names.subject("positions.exercise"), {"account_id": ACCT, "conid": 1})
        assert reply["ok"] is False and reply["error"]["code"] == "NOT_SUPPORTED"
        assert "Client Portal" in reply["error"]["message"]


async def test_bad_request_names_the_field(names, nats_client, sqlite_url, start_worker):
    async with start_worker(sqlite_url):
        reply = await request(nats_client, names.subject("positions.get"), {"account_id": "no spaces allowed"})
        assert reply["ok"] is False and reply["error"]["code"] == "VALIDATION_ERROR"
        assert reply["error"]["details"][0]["field"] == "account_id"


async def test_syncs_pause_while_logged_out_and_a_full_sync_follows_the_login(
    sim, names, events, nats_client, sqlite_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK])
    async with start_bridge(), start_worker(sqlite_url, sync_interval_ms=1000) as app:
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        sim("POST", "/logout")
        sim("POST", f"/positions/{ACCT}", [])
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["ok"] is False and reply["error"]["code"] == "NOT_AUTHENTICATED", reply
        scheduler = app.context.get("sync_scheduler")
        assert scheduler.paused
        rounds = scheduler.rounds
        await asyncio.sleep(2.5)
        assert scheduler.rounds == rounds  # no sync while paused
        got = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT})
        assert [p["conid"] for p in got["result"]["positions"]] == [9100001]  # nothing falsely closed
        sim("POST", "/login")
        await events.wait_for(lambda e: e["type"] == "positions.closed", timeout=20)
        assert not scheduler.paused


async def test_an_open_order_that_vanishes_from_the_live_list_is_kept_not_guessed_closed(
    sim, names, events, nats_client, sqlite_url, cpsim_url, start_bridge, start_worker
):
    import httpx

    from cpsim.testing import place_confirmed

    with httpx.Client(base_url=cpsim_url, verify=False, timeout=10) as gw:
        gw.get("/v1/api/iserver/accounts")
        status, placed = place_confirmed(gw, {"conid": 265598, "orderType": "LMT", "side": "BUY", "tif": "GTC",
                                              "quantity": 1, "price": 1.0, "cOID": "vanish-1"})
    assert status == 200, placed
    async with start_bridge(), start_worker(sqlite_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        before = await request(nats_client, names.subject("orders.get"), {"account_id": ACCT})
        [order] = [o for o in before["result"]["orders"] if o["client_order_id"] == "vanish-1"]
        assert order["status"] in ("submitted", "pre_submitted")
        sim("POST", "/reset")  # a new gateway session: the live list and order status forget the order
        sim("POST", "/limits", {"enabled": False})
        reply = await request(nats_client, names.subject("sync.trigger"), {}, timeout=60)
        assert reply["ok"] is True, reply
        assert any(p["kind"] == "orders_unconfirmed" for p in reply["result"]["problems"]), reply
        after = await request(nats_client, names.subject("orders.get"), {"account_id": ACCT})
        [kept] = [o for o in after["result"]["orders"] if o["client_order_id"] == "vanish-1"]
        assert kept["status"] == order["status"]
        assert not [e for e in events.items if e["type"] == "orders.cancelled"]


async def test_a_day_order_that_expires_at_the_close_is_recorded_cancelled_and_final(
    sim, names, events, nats_client, sqlite_url, cpsim_url, start_bridge, start_worker
):
    """cpsim keeps exchange hours: at the close IBKR cancels a working DAY order (`Cancelled`, REFERENCE.md 6)."""
    import httpx

    from cpsim.testing import place_confirmed

    sim("POST", "/market_hours", {"mode": "exchange"})
    sim("POST", "/clock", {"now": "2026-03-03T20:58:00Z"})  # Tuesday 15:58 New York
    sim("POST", "/login")
    try:
        with httpx.Client(base_url=cpsim_url, verify=False, timeout=10) as gw:
            gw.get("/v1/api/iserver/accounts")
            for coid, tif in (("expires-1", "DAY"), ("keeps-1", "GTC")):
                status, placed = place_confirmed(gw, {"conid": 265598, "orderType": "LMT", "side": "BUY",
                                                      "tif": tif, "quantity": 1, "price": 1.0, "cOID": coid})
                assert status == 200 and "order_id" in placed[0], placed
        async with start_bridge(), start_worker(sqlite_url):
            assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
            sim("POST", "/clock", {"now": "2026-03-03T21:00:30Z"})  # 16:00:30: the session closed
            assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
            got = await request(nats_client, names.subject("orders.get"), {"account_id": ACCT})
            status_of = {o["client_order_id"]: (o["status"], o["tif"]) for o in got["result"]["orders"]}
            assert status_of["expires-1"] == ("cancelled", "DAY")
            assert status_of["keeps-1"][0] in ("submitted", "pre_submitted") and status_of["keeps-1"][1] == "GTC"
            cancelled = await events.wait_for(lambda e: e["type"] == "orders.cancelled")
            assert cancelled["payload"]["order"]["client_order_id"] == "expires-1"
            still_open = await request(nats_client, names.subject("orders.get"), {"account_id": ACCT, "status": "open"})
            assert [o["client_order_id"] for o in still_open["result"]["orders"]] == ["keeps-1"]  # final: not open
    finally:
        sim("POST", "/reset")  # the shared cpsim back to its clock and market open around the clock
