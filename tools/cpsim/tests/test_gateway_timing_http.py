"""Latency (the model, /sim/latency) and exchange hours (/sim/market_hours) over real HTTPS."""

from __future__ import annotations

import time
import uuid

import httpx

from cpsim.testing import ACCOUNT as ACCT
from cpsim.testing import CONIDS, place_confirmed, start_cpsim

AAPL = CONIDS["AAPL"]
SUNDAY_NOON = "2026-03-01T17:00:00Z"  # 12:00 New York
MONDAY_0929 = "2026-03-02T14:29:50Z"  # ten seconds before the open


def mkt(qty: int = 10, **extra: object) -> dict:
    return {"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": qty,
            "cOID": uuid.uuid4().hex[:12], **extra}


def timed(call) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    call()
    return time.monotonic() - started


def order_of(http: httpx.Client, order_id: int) -> dict:
    return next(o for o in http.get("/sim/state").json()["order_book"] if o["order_id"] == order_id)


def position(http: httpx.Client, conid: int) -> float:
    rows = http.get("/sim/state").json()["accounts"][ACCT]["positions"]
    return sum(p["quantity"] for p in rows if p["conid"] == conid)


# ---- latency -----------------------------------------------------------------------------------


def test_cpsim_without_options_keeps_exchange_hours_and_answers_with_latency() -> None:
    with start_cpsim(market_hours=None) as sim, httpx.Client(base_url=sim.url, verify=False, timeout=10) as c:
        state = c.get("/sim/state").json()
        assert state["market_hours"]["mode"] == "exchange" and state["latency"]["enabled"] is True
        assert c.get("/sim/latency").json()["model"][0] == {
            "method": "*", "path": "/tickle", "ms": 15,
            "source": "session keep-alive, answered from the gateway's session (assumption)"}
        c.get("/v1/api/iserver/accounts")
        assert timed(lambda: c.post(f"/v1/api/iserver/account/{ACCT}/orders/whatif",
                                    json={"orders": [mkt()]})) >= 0.15  # 200 ms +-20 %


def test_no_latency_option_answers_at_once() -> None:
    with start_cpsim(latency=False) as sim, httpx.Client(base_url=sim.url, verify=False, timeout=10) as c:
        assert c.get("/sim/latency").json()["enabled"] is False
        c.get("/v1/api/iserver/accounts")
        c.post("/sim/latency", json={"overrides": {"POST /iserver/account/*/orders/whatif": 400}})
        assert timed(lambda: c.post(f"/v1/api/iserver/account/{ACCT}/orders/whatif", json={"orders": [mkt()]})) < 0.3


def test_sim_latency_sets_overrides_scale_and_off_and_reset_restores_the_model(ready: httpx.Client) -> None:
    got = ready.post("/sim/latency", json={"enabled": True, "jitter": 0,
                                           "overrides": {"POST /iserver/account/*/orders": 600}}).json()
    assert got["overrides"] == {"POST /iserver/account/*/orders": 600.0} and got["jitter"] == 0
    slow = timed(lambda: place_confirmed(ready, mkt(1)))
    assert slow >= 0.6
    ready.post("/sim/latency", json={"scale": 0.1})
    assert timed(lambda: place_confirmed(ready, mkt(1))) < slow - 0.3
    ready.post("/sim/latency", json={"enabled": False})
    assert ready.get("/sim/state").json()["latency"]["enabled"] is False
    ready.post("/sim/reset")
    assert ready.get("/sim/latency").json() | {"model": None} == {
        "enabled": True, "scale": 1.0, "jitter": 0.2, "overrides": {}, "default_ms": 40.0, "cap_ms": 10000.0,
        "model": None}


def test_latency_happens_on_both_sides_of_the_call(ready: httpx.Client) -> None:
    """The order is at IBKR (in /sim/state) before its answer reaches the client."""
    ready.post("/sim/latency", json={"enabled": True, "jitter": 0, "overrides": {"POST /iserver/account/*": 1000}})
    import threading

    done = threading.Event()
    coid = uuid.uuid4().hex[:12]

    def place() -> None:
        with httpx.Client(base_url=str(ready.base_url), verify=False, timeout=10) as other:
            other.post(f"/v1/api/iserver/account/{ACCT}/orders", json={"orders": [mkt(1, cOID=coid)]})
        done.set()

    threading.Thread(target=place, daemon=True).start()
    time.sleep(0.75)
    assert not done.is_set()
    assert [o["cOID"] for o in ready.get("/sim/state").json()["orders"]] == [coid]
    assert done.wait(5)


def test_bad_latency_bodies_name_the_field(http: httpx.Client) -> None:
    for body, field in (({"scale": -1}, "scale"), ({"enabled": "yes"}, "enabled"), ({"jitter": 2}, "jitter"),
                        ({"overrides": {"/tickle": 20000}}, "overrides./tickle"),
                        ({"overrides": {"FETCH /x": 1}}, "overrides.FETCH /x"), ({"speed": 1}, "speed"),
                        ({"overrides": []}, "overrides")):
        r = http.post("/sim/latency", json=body)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)


# ---- exchange hours ----------------------------------------------------------------------------


def test_a_market_order_on_sunday_rests_presubmitted_and_fills_at_the_open(ready: httpx.Client) -> None:
    assert ready.post("/sim/market_hours", json={"mode": "exchange"}).json()["open"] in (True, False)
    ready.post("/sim/clock", json={"now": SUNDAY_NOON})
    ready.post("/sim/login")
    ready.get("/v1/api/iserver/accounts")
    hours = ready.get("/sim/market_hours").json()
    assert hours["open"] is False and hours["next_open"] == "2026-03-02T14:30:00+00:00"
    status, body = place_confirmed(ready, mkt(10))
    assert status == 200 and body[0]["order_status"] == "PreSubmitted"
    oid = int(body[0]["order_id"])
    ready.post("/v1/api/tickle")
    assert order_of(ready, oid)["status"] == "PreSubmitted" and position(ready, AAPL) == 0
    ready.post("/sim/clock", json={"now": MONDAY_0929})
    assert order_of(ready, oid)["status"] == "PreSubmitted" and position(ready, AAPL) == 0
    ready.post("/sim/clock", json={"advance_s": 15})  # 09:30:05: the clock reached the open
    filled = order_of(ready, oid)
    assert filled["status"] == "Filled" and filled["history"][-3:] == ["PreSubmitted", "Submitted", "Filled"]
    assert position(ready, AAPL) == 10


def test_opening_the_market_fills_what_rested(ready: httpx.Client) -> None:
    ready.post("/sim/market_hours", json={"mode": "exchange"})
    ready.post("/sim/clock", json={"now": SUNDAY_NOON})
    ready.post("/sim/login")
    ready.get("/v1/api/iserver/accounts")
    _, body = place_confirmed(ready, mkt(3))
    oid = int(body[0]["order_id"])
    assert order_of(ready, oid)["status"] == "PreSubmitted"
    opened = ready.post("/sim/market_hours", json={"mode": "always"}).json()
    assert opened["mode"] == "always" and opened["open"] is True
    assert order_of(ready, oid)["status"] == "Filled" and position(ready, AAPL) == 3
    ready.post("/sim/reset")  # the configured mode comes back (tests start cpsim with the market open)
    assert ready.get("/sim/market_hours").json()["mode"] == "always"


def test_outside_rth_orders_work_in_the_extended_session_others_wait(ready: httpx.Client) -> None:
    ready.post("/sim/market_hours", json={"mode": "exchange"})
    ready.post("/sim/clock", json={"now": "2026-03-02T12:00:00Z"})  # Monday 07:00 New York
    ready.post("/sim/login")
    ready.get("/v1/api/iserver/accounts")
    _, plain = place_confirmed(ready, mkt(1))
    _, early = place_confirmed(ready, mkt(2, outsideRTH=True))
    assert order_of(ready, int(plain[0]["order_id"]))["status"] == "PreSubmitted"
    assert order_of(ready, int(early[0]["order_id"]))["status"] == "Filled"


def test_bad_market_hours_bodies_name_the_field(http: httpx.Client) -> None:
    for body in ({}, {"mode": "sometimes"}, {"mode": 3}):
        r = http.post("/sim/market_hours", json=body)
        assert r.status_code == 400 and r.json()["field"] == "mode", r.text
