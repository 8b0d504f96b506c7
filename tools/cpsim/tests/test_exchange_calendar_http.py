"""Holidays, early closes and DAY-order expiry on cpsim's clock, as a client reads them over real HTTPS.

Every test sets the sim clock (and the exchange mode), so none depends on when the suite runs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from cpsim.testing import ACCOUNT as ACCT
from cpsim.testing import CONIDS, place_confirmed

AAPL = CONIDS["AAPL"]
EXPIRED = "Cancelled by System: order expired"  # REFERENCE.md section 6


def order(kind: str = "LMT", tif: str = "DAY", qty: int = 5, **extra: object) -> dict:
    body: dict = {"conid": AAPL, "orderType": kind, "side": "BUY", "tif": tif, "quantity": qty,
                  "cOID": uuid.uuid4().hex[:12], **extra}
    if kind == "LMT":
        body.setdefault("price", 90)  # far under the pinned ask of 100.10: rests
    return body


def at(http: httpx.Client, now: str, mode: str = "exchange") -> None:
    """Clock at `now`, hours `mode`, a fresh login with the accounts queried, AAPL pinned at 100."""
    http.post("/sim/market_hours", json={"mode": mode})
    assert http.post("/sim/clock", json={"now": now}).status_code == 200
    http.post("/sim/login")
    assert http.get("/v1/api/iserver/accounts").status_code == 200
    http.post("/sim/prices", json={"AAPL": {"bid": 100, "ask": 100.1, "last": 100.05}})


def place(http: httpx.Client, body: dict) -> tuple[int, str]:
    status, answer = place_confirmed(http, body)
    assert status == 200 and "order_id" in answer[0], answer
    return int(answer[0]["order_id"]), answer[0]["order_status"]


def book(http: httpx.Client, oid: int) -> dict:
    return next(o for o in http.get("/sim/state").json()["order_book"] if o["order_id"] == oid)


def live(http: httpx.Client) -> dict[int, dict]:
    rows = http.get("/v1/api/iserver/account/orders").json()["orders"]
    return {row["orderId"]: row for row in rows}


def test_an_order_on_a_holiday_rests_until_the_next_session_opens(http: httpx.Client) -> None:
    at(http, "2026-07-03T15:00:00Z")  # Friday 11:00 New York, Independence Day observed
    hours = http.get("/sim/market_hours").json()
    assert hours["open"] is False and hours["next_open"] == "2026-07-06T13:30:00+00:00"
    oid, status = place(http, order("MKT"))
    assert status == "PreSubmitted"
    http.post("/sim/clock", json={"now": "2026-07-06T13:29:50Z"})  # Monday 09:29:50
    assert book(http, oid)["status"] == "PreSubmitted"
    http.post("/sim/clock", json={"advance_s": 15})
    filled = book(http, oid)
    assert filled["status"] == "Filled" and filled["history"][-3:] == ["PreSubmitted", "Submitted", "Filled"]


def test_an_early_close_ends_the_session_at_13_00(http: httpx.Client) -> None:
    at(http, "2026-11-27T17:58:00Z")  # the day after Thanksgiving, 12:58 New York
    hours = http.get("/sim/market_hours").json()
    assert (hours["open"], hours["session"], hours["early_close"], hours["next_close"]) == (
        True, "2026-11-27", True, "2026-11-27T18:00:00+00:00")
    http.post("/sim/clock", json={"now": "2026-11-27T18:30:00Z"})  # 13:30: closed for the day
    http.post("/sim/login")
    http.get("/v1/api/iserver/accounts")
    oid, status = place(http, order("MKT"))
    assert status == "PreSubmitted"
    late, _ = place(http, order("MKT", outsideRTH=True))
    assert book(http, late)["status"] == "Filled"  # the extended session runs until 17:00 that day
    hours = http.get("/sim/market_hours").json()
    assert hours["open"] is False and hours["next_open"] == "2026-11-30T14:30:00+00:00"
    http.post("/sim/clock", json={"now": "2026-11-30T14:30:01Z"})
    assert book(http, oid)["status"] == "Filled"


def test_a_day_order_expires_at_the_close_and_reads_cancelled_a_gtc_order_keeps_working(http: httpx.Client) -> None:
    at(http, "2026-11-27T17:58:00Z")  # 12:58 on an early-close day
    day, _ = place(http, order())
    gtc, _ = place(http, order(tif="GTC"))
    assert book(http, day)["expires_at"] == "2026-11-27T18:00:00+00:00" and book(http, gtc)["expires_at"] is None
    http.post("/sim/clock", json={"now": "2026-11-27T17:59:59Z"})
    assert live(http)[day]["status"] == "Submitted"
    http.post("/sim/clock", json={"now": "2026-11-27T18:00:30Z"})  # 13:00:30, the session still logged in
    rows = live(http)
    assert rows[day]["status"] == "Cancelled" and rows[day]["order_cancellation_by_system_reason"] == EXPIRED
    assert rows[day]["lastExecutionTime_r"] == datetime(2026, 11, 27, 18, 0, tzinfo=UTC).timestamp() * 1000  # the close
    assert rows[gtc]["status"] == "Submitted" and "order_cancellation_by_system_reason" not in rows[gtc]
    status = http.get(f"/v1/api/iserver/account/order/status/{day}").json()
    assert status["order_status"] == "Cancelled" and status["order_cancellation_by_system_reason"] == EXPIRED
    assert book(http, day)["history"] == ["PendingSubmit", "Submitted", "Cancelled"]
    cancel = http.delete(f"/v1/api/iserver/account/{ACCT}/order/{day}").json()
    assert cancel == {"error": f"OrderID {day} doesn't exist"}  # no longer working
    # Monday: the nightly reset ended the brokerage session, so the expired order is gone from the list and
    # order status (REFERENCE.md 7.4); the GTC order is still there and fills when the price comes down.
    at(http, "2026-11-30T14:35:00Z")
    assert set(live(http)) == {gtc}
    assert http.get(f"/v1/api/iserver/account/order/status/{day}").status_code == 503
    http.post("/sim/prices", json={"AAPL": {"bid": 89.9, "ask": 90, "last": 89.95}})
    assert book(http, gtc)["status"] == "Filled" and book(http, day)["status"] == "Cancelled"


def test_day_orders_live_until_16_00_or_with_outside_rth_until_20_00(http: httpx.Client) -> None:
    at(http, "2026-03-03T20:58:00Z")  # Tuesday 15:58 New York
    regular, _ = place(http, order())
    extended, _ = place(http, order(outsideRTH=True))
    http.post("/sim/clock", json={"now": "2026-03-03T21:00:00Z"})  # 16:00
    assert (book(http, regular)["status"], book(http, extended)["status"]) == ("Cancelled", "Submitted")
    http.post("/sim/clock", json={"now": "2026-03-04T01:00:00Z"})  # 20:00
    assert book(http, extended)["status"] == "Cancelled" and book(http, extended)["cancel_reason"] == EXPIRED
    # Placed after the close, a DAY order belongs to the next session and works in it.
    at(http, "2026-03-03T21:30:00Z")
    evening, status = place(http, order("MKT"))
    assert status == "PreSubmitted" and book(http, evening)["expires_at"] == "2026-03-04T21:00:00+00:00"


def test_the_clock_jumping_over_a_whole_session_expires_a_day_order_unfilled(http: httpx.Client) -> None:
    at(http, "2026-03-01T17:00:00Z")  # Sunday
    oid, _ = place(http, order("MKT"))
    http.post("/sim/clock", json={"now": "2026-03-03T15:00:00Z"})  # Tuesday 10:00: Monday was skipped
    got = book(http, oid)
    assert got["status"] == "Cancelled" and got["filled"] == 0


def test_a_day_order_modified_to_gtc_survives_the_close(http: httpx.Client) -> None:
    at(http, "2026-03-03T20:58:00Z")
    oid, _ = place(http, order())
    body = order() | {"tif": "GTC"}
    body.pop("cOID")
    r = http.post(f"/v1/api/iserver/account/{ACCT}/order/{oid}", json=body).json()
    while isinstance(r, list) and "id" in r[0]:  # questions about the limit price
        r = http.post(f"/v1/api/iserver/reply/{r[0]['id']}", json={"confirmed": True}).json()
    assert r[0]["order_id"] == str(oid)
    assert book(http, oid)["expires_at"] is None
    http.post("/sim/clock", json={"now": "2026-03-03T21:05:00Z"})
    assert book(http, oid)["status"] == "Submitted"


def test_always_mode_never_closes_nor_expires_until_the_exchange_mode_comes_back(http: httpx.Client) -> None:
    at(http, "2026-07-03T15:00:00Z", mode="always")  # a holiday, but the market is open around the clock
    oid, status = place(http, order())
    assert status == "Submitted" and book(http, oid)["expires_at"] is None
    filled, _ = place(http, order("MKT"))
    assert book(http, filled)["status"] == "Filled"
    http.post("/sim/clock", json={"now": "2026-07-08T03:00:00Z"})  # days later, at night
    assert book(http, oid)["status"] == "Submitted"
    closed = http.post("/sim/market_hours", json={"mode": "exchange"}).json()
    assert closed["open"] is False
    # From now on its day is the next session (Wednesday 8 July), at whose close it ends.
    assert book(http, oid)["expires_at"] == "2026-07-08T20:00:00+00:00"
    http.post("/sim/clock", json={"now": "2026-07-08T20:00:01Z"})
    assert book(http, oid)["status"] == "Cancelled"


def test_the_clock_cannot_be_advanced_beyond_the_calendar(http: httpx.Client) -> None:
    http.post("/sim/clock", json={"now": "2199-06-01T00:00:00Z"})
    r = http.post("/sim/clock", json={"advance_s": 365 * 86400})
    assert r.status_code == 400 and r.json()["field"] == "advance_s", r.text
    assert http.get("/sim/clock").json()["now"].startswith("2199-06-01")
