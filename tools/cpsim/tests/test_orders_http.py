"""Order flow over real HTTPS: questions, replies, suppression, fills, cancel, modify, live orders, combos."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from cpsim.testing import ACCOUNT as ACCT
from cpsim.testing import CONIDS, place_confirmed

AAPL, SPY = CONIDS["AAPL"], CONIDS["SPY"]
ORDERS = f"/v1/api/iserver/account/{ACCT}/orders"


def lmt(price: float, qty: int = 1, side: str = "BUY", conid: int = AAPL, **extra: object) -> dict:
    return {
        "conid": conid,
        "orderType": "LMT",
        "side": side,
        "tif": "DAY",
        "quantity": qty,
        "price": price,
        "cOID": uuid.uuid4().hex[:12],
        **extra,
    }


def mkt(qty: int = 1, side: str = "BUY", conid: int = AAPL, **extra: object) -> dict:
    return {
        "conid": conid,
        "orderType": "MKT",
        "side": side,
        "tif": "DAY",
        "quantity": qty,
        "cOID": uuid.uuid4().hex[:12],
        **extra,
    }


def set_price(http: httpx.Client, conid: int, last: float) -> None:
    http.post("/sim/prices", json={str(conid): {"bid": last - 0.01, "ask": last + 0.01, "last": last}})


def test_far_limit_asks_o163_with_uuid_reply_id_then_places_with_string_order_id(ready: httpx.Client) -> None:
    r = ready.post(ORDERS, json={"orders": [lmt(1.0)]})
    question = r.json()[0]
    assert r.status_code == 200 and question["messageIds"] == ["o163"] and question["isSuppressed"] is False
    assert uuid.UUID(question["id"])
    placed = ready.post(f"/v1/api/iserver/reply/{question['id']}", json={"confirmed": True}).json()
    assert isinstance(placed[0]["order_id"], str) and placed[0]["order_id"].isdigit()
    assert placed[0]["order_status"] == "Submitted" and placed[0]["encrypt_message"] == "1"


def test_stale_reply_id_is_400_reply_id_not_found(ready: httpx.Client) -> None:
    first = ready.post(ORDERS, json={"orders": [lmt(1.0)]}).json()[0]["id"]
    ready.post(ORDERS, json={"orders": [lmt(2.0)]})  # another order invalidates the first question
    r = ready.post(f"/v1/api/iserver/reply/{first}", json={"confirmed": True})
    assert r.status_code == 400 and r.json() == {"error": f"reply id not found: '{first}'"}


def test_declining_a_question_discards_the_order(ready: httpx.Client) -> None:
    qid = ready.post(ORDERS, json={"orders": [lmt(1.0)]}).json()[0]["id"]
    r = ready.post(f"/v1/api/iserver/reply/{qid}", json={"confirmed": False})
    assert r.status_code == 400
    assert ready.get("/v1/api/iserver/account/orders").json()["orders"] == []


def test_suppressed_message_ids_skip_questions_until_reset(ready: httpx.Client) -> None:
    assert ready.post("/v1/api/iserver/questions/suppress", json={"messageIds": ["o163"]}).json() == {
        "status": "submitted"
    }
    assert "order_id" in ready.post(ORDERS, json={"orders": [lmt(1.0)]}).json()[0]
    ready.post("/v1/api/iserver/questions/suppress/reset")
    assert "id" in ready.post(ORDERS, json={"orders": [lmt(1.0)]}).json()[0]


def test_injected_questions_are_asked_in_turn(ready: httpx.Client) -> None:
    ready.post("/sim/questions", json={"message_ids": ["o354", "o10151"]})
    first = ready.post(ORDERS, json={"orders": [mkt()]}).json()[0]
    assert first["messageIds"] == ["o354"]
    second = ready.post(f"/v1/api/iserver/reply/{first['id']}", json={"confirmed": True}).json()[0]
    assert second["messageIds"] == ["o10151"]
    done = ready.post(f"/v1/api/iserver/reply/{second['id']}", json={"confirmed": True}).json()[0]
    assert "order_id" in done


def test_duplicate_coid_is_rejected_with_local_order_id_error_and_recorded(ready: httpx.Client) -> None:
    order = mkt(cOID="dup-1")
    assert place_confirmed(ready, order)[0] == 200
    status, body = place_confirmed(ready, order)
    assert status == 200 and "Order couldn't be submitted: Local order ID=dup-1" in body["error"]
    received = [o for o in ready.get("/sim/state").json()["orders"] if o["cOID"] == "dup-1"]
    assert len(received) == 2 and received[1]["sim"]["outcome"] == "rejected"
    assert received[0]["side"] == "BUY" and received[0]["conid"] == AAPL


def test_market_order_fills_at_ask_and_moves_position_and_cash(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    cash_before = ready.get("/sim/state").json()["accounts"][ACCT]["cash"]
    _, body = place_confirmed(ready, mkt(10))
    oid = int(body[0]["order_id"])
    status = ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()
    assert status["order_status"] == "Filled" and status["order_id"] == oid and status["avg_fill_price"] == "200.01"
    acct = ready.get("/sim/state").json()["accounts"][ACCT]
    pos = {p["conid"]: p for p in acct["positions"]}[AAPL]
    assert pos["quantity"] == 10 and pos["avg_price"] == 200.01
    assert round(cash_before - acct["cash"], 2) == round(10 * 200.01 + 1.0, 2)


def test_resting_limit_fills_when_price_crosses(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    _, body = place_confirmed(ready, lmt(199.0))
    oid = int(body[0]["order_id"])
    assert ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()["order_status"] == "Submitted"
    set_price(ready, AAPL, 198.5)
    status = ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()
    assert status["order_status"] == "Filled" and float(status["avg_fill_price"]) <= 199.0


def test_sell_stop_is_presubmitted_until_triggered(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    place_confirmed(ready, mkt(5))
    order = {"conid": AAPL, "orderType": "STP", "side": "SELL", "tif": "GTC", "quantity": 5, "price": 190.0}
    _, body = place_confirmed(ready, order)
    oid = int(body[0]["order_id"])
    assert body[0]["order_status"] == "PreSubmitted"
    set_price(ready, AAPL, 189.0)
    assert ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()["order_status"] == "Filled"


def test_large_order_fills_partially_then_completes_over_sim_seconds(ready: httpx.Client) -> None:
    _, body = place_confirmed(ready, mkt(2500, conid=SPY))
    oid = int(body[0]["order_id"])
    first = ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()
    assert first["order_status"] == "Submitted" and first["filled_quantity"] == "1000.0"
    for _ in range(2):
        ready.post("/sim/clock", json={"advance_s": 1.5})
    done = ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()
    assert done["order_status"] == "Filled" and done["filled_quantity"] == "2500.0"


def test_cancel_returns_numeric_order_id_and_status_becomes_cancelled(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    _, body = place_confirmed(ready, lmt(195.0))
    oid = body[0]["order_id"]
    r = ready.delete(f"/v1/api/iserver/account/{ACCT}/order/{oid}").json()
    assert r["msg"] == "Request was submitted" and r["order_id"] == int(oid)
    st = ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()
    assert st["order_status"] == "Cancelled"


def test_cancel_minus_one_cancels_all_working_orders(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    ids = [place_confirmed(ready, lmt(195.0 + i))[1][0]["order_id"] for i in range(3)]
    ready.delete(f"/v1/api/iserver/account/{ACCT}/order/-1")
    statuses = {o["orderId"]: o["status"] for o in ready.get("/v1/api/iserver/account/orders").json()["orders"]}
    assert all(statuses[int(i)] == "Cancelled" for i in ids)


def test_cancel_unknown_order_is_an_error_object(ready: httpx.Client) -> None:
    r = ready.delete(f"/v1/api/iserver/account/{ACCT}/order/42")
    assert r.json() == {"error": "OrderID 42 doesn't exist"}


def test_modify_changes_the_limit_and_can_fill(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    _, body = place_confirmed(ready, lmt(198.0))
    oid = body[0]["order_id"]
    r = ready.post(
        f"/v1/api/iserver/account/{ACCT}/order/{oid}",
        json={"conid": AAPL, "orderType": "LMT", "side": "BUY", "tif": "DAY", "quantity": 1, "price": 200.5},
    )
    assert r.json()[0]["order_id"] == oid
    assert ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()["order_status"] == "Filled"


def test_live_orders_force_true_is_empty_then_normal(ready: httpx.Client) -> None:
    place_confirmed(ready, lmt(1.0))
    assert ready.get("/v1/api/iserver/account/orders", params={"force": "true"}).json() == {
        "orders": [],
        "snapshot": False,
    }
    orders = ready.get("/v1/api/iserver/account/orders").json()["orders"]
    assert len(orders) == 1 and isinstance(orders[0]["orderId"], int) and orders[0]["status"] == "Submitted"


def test_live_orders_filters_must_be_lowercase(ready: httpx.Client) -> None:
    place_confirmed(ready, lmt(1.0))
    assert ready.get("/v1/api/iserver/account/orders", params={"filters": "Submitted"}).status_code == 500
    assert ready.get("/v1/api/iserver/account/orders", params={"filters": "filled"}).json()["orders"] == []
    assert len(ready.get("/v1/api/iserver/account/orders", params={"filters": "submitted"}).json()["orders"]) == 1


def test_order_status_of_unknown_order_is_503(ready: httpx.Client) -> None:
    assert ready.get("/v1/api/iserver/account/order/status/123").status_code == 503


def test_order_status_of_another_accounts_order_is_503_until_switched(ready: httpx.Client) -> None:
    other = "DU7654321"
    ready.post(f"/sim/accounts/{other}", json={"cash": 100000})
    assert ready.post("/v1/api/iserver/account", json={"acctId": other}).status_code == 200
    _, body = place_confirmed(ready, lmt(1.0), account=other)
    oid = body[0]["order_id"]
    assert ready.get(f"/v1/api/iserver/account/order/status/{oid}").status_code == 200
    assert ready.post("/v1/api/iserver/account", json={"acctId": ACCT}).status_code == 200
    assert ready.get(f"/v1/api/iserver/account/order/status/{oid}").status_code == 503  # REFERENCE.md 4.10


def test_status_history_uses_ibkr_spelling(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    _, body = place_confirmed(ready, lmt(195.0))
    ready.delete(f"/v1/api/iserver/account/{ACCT}/order/{body[0]['order_id']}")
    book = ready.get("/sim/state").json()["order_book"]
    assert book[0]["history"] == ["PendingSubmit", "Submitted", "PendingCancel", "Cancelled"]


def test_combo_order_fills_every_leg(ready: httpx.Client) -> None:
    ready.get("/v1/api/iserver/secdef/search", params={"symbol": "SPY"})
    month = ready.get("/v1/api/iserver/secdef/search", params={"symbol": "SPY"}).json()[0]["sections"][1]["months"]
    month = month.split(";")[0]
    strikes = ready.get(
        "/v1/api/iserver/secdef/strikes", params={"conid": SPY, "sectype": "OPT", "month": month}
    ).json()["call"]
    mid = len(strikes) // 2
    long_c = ready.get(
        "/v1/api/iserver/secdef/info",
        params={"conid": SPY, "sectype": "OPT", "month": month, "strike": strikes[mid], "right": "C"},
    ).json()[0]["conid"]
    short_c = ready.get(
        "/v1/api/iserver/secdef/info",
        params={"conid": SPY, "sectype": "OPT", "month": month, "strike": strikes[mid + 1], "right": "C"},
    ).json()[0]["conid"]
    order = {
        "conidex": f"28812380;;;{long_c}/1,{short_c}/-1",
        "orderType": "MKT",
        "side": "BUY",
        "tif": "DAY",
        "quantity": 2,
    }
    status, body = place_confirmed(ready, order)
    assert status == 200 and "order_id" in body[0]
    positions = {p["conid"]: p["quantity"] for p in ready.get("/sim/state").json()["accounts"][ACCT]["positions"]}
    assert positions == {long_c: 2, short_c: -2}


def test_trades_list_fills_with_ibkr_side_codes(ready: httpx.Client) -> None:
    place_confirmed(ready, mkt(3))
    trades = ready.get("/v1/api/iserver/account/trades").json()
    assert trades[0]["side"] == "B" and trades[0]["size"] == 3.0 and trades[0]["conid"] == AAPL


def test_sim_trades_add_history(ready: httpx.Client) -> None:
    ready.post(
        f"/sim/trades/{ACCT}",
        json=[
            {
                "time": "2026-01-05T15:00:00Z",
                "conid": AAPL,
                "symbol": "AAPL",
                "side": "SELL",
                "quantity": 4,
                "price": 190.5,
            }
        ],
    )
    trades = ready.get("/v1/api/iserver/account/trades", params={"days": 7}).json()
    assert len(ready.get("/sim/state").json()["accounts"][ACCT]["executions"]) == 1
    assert all(t["side"] in ("B", "S") for t in trades)


def test_cash_account_cannot_sell_short(ready: httpx.Client) -> None:
    ready.post(f"/sim/accounts/{ACCT}", json={"account_type": "cash"})
    status, body = place_confirmed(ready, mkt(1, side="SELL"))
    assert status == 200 and "cash account" in body["error"]


def test_insufficient_buying_power_is_rejected(ready: httpx.Client) -> None:
    ready.post(f"/sim/accounts/{ACCT}", json={"buying_power": 1000})
    status, body = place_confirmed(ready, mkt(100))
    assert status == 200 and "insufficient" in body["error"]


def test_day_trade_counter_decrements(ready: httpx.Client) -> None:
    ready.post(f"/sim/accounts/{ACCT}", json={"day_trades_remaining": 3})
    place_confirmed(ready, mkt(5))
    place_confirmed(ready, mkt(5, side="SELL"))
    summary = ready.get(f"/v1/api/portfolio/{ACCT}/summary").json()
    assert summary["daytradesremaining"]["amount"] == 2.0


def test_wrong_types_in_an_order_are_500_error_object(ready: httpx.Client) -> None:
    r = ready.post(ORDERS, json={"orders": [{"conid": AAPL, "orderType": "MKT", "side": "BUY", "quantity": "lots"}]})
    assert r.status_code == 500 and "quantity" in r.json()["error"]


def test_unknown_conid_order_is_rejected(ready: httpx.Client) -> None:
    status, body = place_confirmed(ready, mkt(conid=999999999))
    assert status == 200 and "999999999" in body["error"]


def test_whatif_returns_display_strings(ready: httpx.Client) -> None:
    body = ready.post(f"{ORDERS}/whatif", json={"orders": [mkt(10)]}).json()
    assert body["amount"]["amount"].endswith("USD (10 Shares)") and body["position"]["after"] == "10"


def test_modify_far_from_market_asks_o163_and_applies_after_reply(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    _, body = place_confirmed(ready, lmt(198.0))
    oid = body[0]["order_id"]
    change = {"conid": AAPL, "orderType": "LMT", "side": "BUY", "tif": "DAY", "quantity": 3, "price": 150.0}
    question = ready.post(f"/v1/api/iserver/account/{ACCT}/order/{oid}", json=change).json()[0]
    assert question["messageIds"] == ["o163"]
    done = ready.post(f"/v1/api/iserver/reply/{question['id']}", json={"confirmed": True}).json()[0]
    assert done["order_id"] == oid
    status = ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()
    assert (status["limit_price"], status["total_size"]) == ("150.00", "3.0")
    assert len(ready.get("/sim/state").json()["modifications"]) == 1


def test_stop_limit_triggers_then_fills_only_within_its_limit(ready: httpx.Client) -> None:
    set_price(ready, AAPL, 200.0)
    place_confirmed(ready, mkt(2))
    order = {
        "conid": AAPL,
        "orderType": "STOP_LIMIT",
        "side": "SELL",
        "tif": "GTC",
        "quantity": 2,
        "price": 189.0,
        "auxPrice": 190.0,
    }
    _, body = place_confirmed(ready, order)
    oid = int(body[0]["order_id"])
    set_price(ready, AAPL, 185.0)  # triggered, but the bid is below the 189 limit
    assert ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()["order_status"] == "Submitted"
    set_price(ready, AAPL, 189.5)
    assert ready.get(f"/v1/api/iserver/account/order/status/{oid}").json()["order_status"] == "Filled"


def test_live_orders_list_at_most_the_newest_thousand(ready: httpx.Client) -> None:
    assert ready.post("/v1/api/iserver/questions/suppress", json={"messageIds": ["o163"]}).status_code == 200
    ids = []
    for i in range(1003):
        body = ready.post(f"/v1/api/iserver/account/{ACCT}/orders", json={"orders": [lmt(1.0, cOID=f"cap-{i}")]}).json()
        ids.append(int(body[0]["order_id"]))
    orders = ready.get("/v1/api/iserver/account/orders").json()["orders"]
    assert len(orders) == 1000
    assert {o["orderId"] for o in orders} == set(ids[3:])


def test_sim_state_reads_back_after_a_day_trade(ready: httpx.Client) -> None:
    place_confirmed(ready, mkt(4))
    place_confirmed(ready, mkt(4, side="SELL"))  # closes what opened today: a day trade, kept as a date
    r = ready.get("/sim/state")
    assert r.status_code == 200, r.text
    state = r.json()
    [day] = state["accounts"][ACCT]["day_trades"]
    assert day == datetime.fromisoformat(state["now"]).astimezone(ZoneInfo("America/New_York")).date().isoformat()
