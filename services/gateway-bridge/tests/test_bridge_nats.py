"""Through NATS and the bridge to cpsim over HTTPS: every operation, bad input, faults, orders, events."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import pytest

ACCT = "DU1234567"
AAPL = 265598
Bridge = Any
Sim = Any

pytestmark = pytest.mark.connected


async def test_session_and_account_operations(bridge: Bridge, fresh: Sim) -> None:
    status = await bridge.ok("session.status", {})
    assert status["authenticated"] is True and status["competing"] is False
    tickle = await bridge.ok("session.tickle", {})
    assert tickle["sso_expires_ms"] > 0 and tickle["expires_at"] and "session" not in tickle
    accounts = await bridge.ok("accounts.list", {})
    assert accounts["accounts"] == [ACCT]
    portfolio = await bridge.ok("accounts.portfolio", {})
    assert portfolio["accounts"][0]["account_id"] == ACCT
    summary = await bridge.ok("accounts.summary", {"account_id": ACCT})
    assert Decimal(summary["net_liquidation"]) > 0 and Decimal(summary["buying_power"]) > 0
    ledger = await bridge.ok("accounts.ledger", {"account_id": ACCT})
    assert ledger["entries"]
    pnl = await bridge.ok("accounts.pnl", {})
    assert "rows" in pnl


async def test_positions(bridge: Bridge, fresh: Sim) -> None:
    fresh("POST", f"/positions/{ACCT}", [{"conid": AAPL, "symbol": "AAPL", "sec_type": "STK", "quantity": 100,
                                          "avg_price": 150, "market_price": 170}])
    await bridge.ok("positions.invalidate", {"account_id": ACCT})
    listed = await bridge.ok("positions.list", {"account_id": ACCT})
    [pos] = listed["positions"]
    assert pos["conid"] == AAPL and Decimal(pos["quantity"]) == 100 and pos["sec_type"] == "STK"
    page = await bridge.ok("positions.page", {"account_id": ACCT, "page": 0})
    assert page["has_more"] is False and len(page["positions"]) == 1
    one = await bridge.ok("positions.get", {"account_id": ACCT, "conid": AAPL})
    assert one["positions"][0]["conid"] == AAPL


async def test_contracts_public_and_bridge(bridge: Bridge, fresh: Sim) -> None:
    found = await bridge.ok("contracts.search", {"symbol": "AAPL"}, public=True)
    aapl = found["contracts"][0]
    assert aapl["conid"] == AAPL and isinstance(aapl["conid"], int) and aapl["symbol"] == "AAPL"
    month = aapl["option_months"][0]
    fresh("POST", "/reset")  # forget the search: the option chain must do its own pre-flight
    bridge.service.portal.gateway.session_lost()
    chain = await bridge.ok("contracts.option_chain", {"underlying_conid": AAPL, "month": month}, public=True)
    assert chain["calls"] and chain["puts"] and all(Decimal(x) > 0 for x in chain["calls"])
    info = await bridge.ok("contracts.info", {"conid": AAPL})
    assert info["symbol"] == "AAPL"
    strike = chain["calls"][len(chain["calls"]) // 2]
    opts = await bridge.ok("contracts.secdef_info", {"conid": AAPL, "month": month, "strike": strike, "right": "C"})
    assert opts["contracts"] and opts["contracts"][0]["right"] == "C"
    secdef = await bridge.ok("contracts.secdef", {"conids": [AAPL]})
    assert secdef["contracts"][0]["conid"] == AAPL


async def test_snapshot_does_its_own_preflight(bridge: Bridge, fresh: Sim) -> None:
    fresh("POST", "/prices", {str(AAPL): {"bid": 199.5, "ask": 200.5, "last": 200}})
    snap = await bridge.ok("marketdata.snapshot", {"conids": [AAPL]})
    assert snap["complete"] is True
    [row] = snap["snapshots"]
    assert Decimal(row["bid"]) == Decimal("199.5") and Decimal(row["last"]) == 200


@pytest.mark.parametrize(("op", "payload", "fields"), [
    ("contracts.search", {}, {"symbol"}),
    ("contracts.search", {"symbol": "AAPL", "bogus": 1}, {"bogus"}),
    ("orders.place", {"account_id": "DU1", "orders": [{"conid": 1, "side": "HOLD", "quantity": -1,
                                                       "order_type": "MKT", "cOID": "x"}]},
     {"orders.0.side", "orders.0.quantity"}),
    ("orders.place", {"account_id": "../x", "orders": []}, {"account_id", "orders"}),
    ("accounts.summary", {}, {"account_id"}),
    ("marketdata.snapshot", {"conids": []}, {"conids"}),
    ("orders.cancel", {"account_id": ACCT, "order_id": "abc"}, {"order_id"}),
    ("session.status", {"priority": "urgent"}, {"priority"}),
])
async def test_validation_errors_name_each_field(bridge: Bridge, op: str, payload: dict[str, Any],
                                                 fields: set[str]) -> None:
    error = await bridge.error(op, payload)
    assert error["code"] == "VALIDATION_ERROR"
    named = {d["field"] for d in error["details"]}
    assert fields <= named, named


async def test_malformed_json(bridge: Bridge) -> None:
    for public in (True, False):
        error = await bridge.error("contracts.search", b"{not json", public=public)
        assert error["code"] == "VALIDATION_ERROR"


async def test_not_authenticated_and_no_bridge(bridge: Bridge, fresh: Sim) -> None:
    fresh("POST", "/logout")
    error = await bridge.error("accounts.list", {})
    assert error["code"] == "NOT_AUTHENTICATED"
    fresh("POST", "/login", {"brokerage": False})  # SSO only: /iserver answers 400 "no bridge"
    accounts = await bridge.ok("accounts.list", {})
    assert accounts["accounts"] == [ACCT]
    paths = [r["path"] for r in fresh.state()["requests"]]
    assert any(p.endswith("/iserver/auth/ssodh/init") for p in paths)


async def test_accounts_first_is_handled_after_a_gateway_restart(bridge: Bridge, fresh: Sim) -> None:
    await bridge.ok("accounts.summary", {"account_id": ACCT})
    fresh("POST", "/reset")  # a new gateway: it wants /iserver/accounts again, the bridge does not know yet
    live = await bridge.ok("orders.live", {"max_age_s": 0}, timeout=25)
    assert live["orders"] == []
    assert fresh.api_requests("/iserver/accounts")


@pytest.mark.parametrize(("fault", "code", "reason"), [
    ({"status": 500, "body": {"error": "internal"}}, "GATEWAY_UNAVAILABLE", None),
    ({"status": 503}, "GATEWAY_UNAVAILABLE", None),
    ({"html": True, "status": 200}, "GATEWAY_UNAVAILABLE", "html_body"),
    ({"status": 200, "body": "garbage{not json"}, "GATEWAY_UNAVAILABLE", "not_json"),
    ({"status": 200, "body": "   "}, "GATEWAY_UNAVAILABLE", "empty_body"),
    ({"status": 200}, "GATEWAY_UNAVAILABLE", "empty_body"),
    ({"drop_connection": True, "count": 2}, "GATEWAY_UNAVAILABLE", "connection_dropped"),
    ({"delay_ms": 4500}, "TIMEOUT", None),
])
async def test_faults_get_typed_errors_in_time_and_the_bridge_recovers(bridge: Bridge, fresh: Sim,
                                                                       fault: dict[str, Any], code: str,
                                                                       reason: str | None) -> None:
    fresh("POST", "/faults", {"path_glob": "*secdef/search*", **fault})
    started = time.monotonic()
    error = await bridge.error("contracts.search", {"symbol": "AAPL"}, public=True)
    assert time.monotonic() - started < 7
    assert error["code"] == code, error
    assert error["message"] and error["details"], error
    if reason:
        assert error["details"]["reason"] == reason, error
    if "status" in fault:
        assert error["details"]["status"] == fault["status"] and error["details"]["path"] == "/iserver/secdef/search"
    if fault.get("body") == "garbage{not json":
        assert error["details"]["body_start"] == "garbage{not json"
    if "delay_ms" in fault:
        await asyncio.sleep(2)
    found = await bridge.ok("contracts.search", {"symbol": "AAPL"}, public=True)
    assert found["contracts"][0]["conid"] == AAPL


async def test_gateway_down_then_up(bridge: Bridge, fresh: Sim) -> None:
    http = bridge.service.portal.gateway.http
    real = http.base_url
    http.base_url = "https://127.0.0.1:1/v1/api"  # nothing listens there: connection refused
    try:
        error = await bridge.error("session.status", {})
        assert error["code"] == "GATEWAY_UNAVAILABLE"
        assert error["details"]["reason"] == "connect", error
    finally:
        http.base_url = real
    assert (await bridge.ok("session.status", {}))["authenticated"] is True


def order(coid: str, **extra: Any) -> dict[str, Any]:
    return {"conid": AAPL, "side": "BUY", "quantity": "1", "order_type": "MKT", "tif": "DAY", "cOID": coid, **extra}


async def test_question_passthrough_and_reply(bridge: Bridge, fresh: Sim) -> None:
    fresh("POST", "/questions", {"message_ids": ["o354"]})
    coid = f"q-{time.time_ns()}"
    placed = await bridge.ok("orders.place", {"account_id": ACCT, "orders": [order(coid)]}, timeout=40)
    assert placed["status"] == "confirmation_required" and placed["order_id"] is None
    question = placed["confirmation"]
    assert question["message_ids"] == ["o354"] and question["reply_id"] and question["messages"]
    # the gateway received the order once and placed nothing while its question is open
    state = fresh.state()
    [received] = [o for o in state["orders"] if o.get("cOID") == coid]
    assert received["sim"]["outcome"] == "pending" and received["sim"]["order_id"] is None, received
    assert [o for o in state["order_book"] if o["cOID"] == coid] == []
    assert [q["reply_id"] for q in state["pending_questions"]] == [question["reply_id"]]
    done = await bridge.ok("orders.reply", {"reply_id": question["reply_id"], "confirmed": True,
                                            "account_id": ACCT, "client_order_id": coid}, timeout=40)
    assert done["status"] == "submitted" and done["order_id"]
    # the yes placed that one order: no second send of the order itself
    state = fresh.state()
    [received] = [o for o in state["orders"] if o.get("cOID") == coid]
    assert received["sim"]["outcome"] == "accepted" and str(received["sim"]["order_id"]) == done["order_id"]
    assert [str(o["order_id"]) for o in state["order_book"] if o["cOID"] == coid] == [done["order_id"]]
    status = await bridge.ok("orders.status", {"order_id": done["order_id"]})
    assert status["order_id"] == done["order_id"]
    stale = await bridge.error("orders.reply", {"reply_id": question["reply_id"], "confirmed": True}, timeout=40)
    assert stale["code"] in ("NOT_FOUND", "VALIDATION_ERROR")


async def test_dropped_order_is_resolved_by_coid_and_sent_once(bridge: Bridge, fresh: Sim) -> None:
    coid = f"drop-{time.time_ns()}"
    fresh("POST", "/faults", {"path_glob": f"*/iserver/account/{ACCT}/orders", "drop_connection": True,
                              "method": "POST"})
    result = await bridge.ok("orders.place", {"account_id": ACCT, "orders": [order(coid)]}, timeout=40)
    assert result["status"] == "unknown" and result["evidence"]["failure"]["code"] == "GATEWAY_UNAVAILABLE"
    assert "live_orders_checked" in result["evidence"]["lookups"][-1]
    received = [o for o in fresh.state()["orders"] if o.get("cOID") == coid]
    assert received == []  # the drop happened before the gateway took it, and the bridge did not re-send
    posts = [r for r in fresh.state()["requests"] if r["method"] == "POST" and r["path"].endswith(f"{ACCT}/orders")]
    assert len(posts) == 1


async def test_slow_order_answer_is_unknown_and_never_resent(bridge: Bridge, fresh: Sim) -> None:
    coid = f"slow-{time.time_ns()}"
    fresh("POST", "/faults", {"path_glob": f"*/iserver/account/{ACCT}/orders", "delay_ms": 3500, "method": "POST"})
    result = await bridge.ok("orders.place", {"account_id": ACCT, "orders": [order(coid)]}, timeout=40)
    assert result["status"] == "unknown", result  # cpsim drops a request whose client went away
    assert result["evidence"]["failure"]["code"] == "TIMEOUT"
    posts = [r for r in fresh.state()["requests"] if r["method"] == "POST" and r["path"].endswith(f"{ACCT}/orders")]
    assert len(posts) == 1


async def test_lost_answer_of_an_order_that_arrived_is_resolved_as_submitted(bridge: Bridge, fresh: Sim) -> None:
    import httpx

    coid = f"lost-{time.time_ns()}"
    # the order reached the gateway (here: sent directly), then the bridge's own POST of it is dropped
    with httpx.Client(base_url=fresh.http.base_url, verify=False) as direct:
        direct.get("/v1/api/iserver/accounts")
        first = direct.post(f"/v1/api/iserver/account/{ACCT}/orders", json={"orders": [
            {"conid": AAPL, "side": "BUY", "quantity": 1, "orderType": "MKT", "tif": "DAY", "cOID": coid}]}).json()
    assert first[0].get("order_id"), first
    fresh("POST", "/faults", {"path_glob": f"*/iserver/account/{ACCT}/orders", "drop_connection": True,
                              "method": "POST"})
    result = await bridge.ok("orders.place", {"account_id": ACCT, "orders": [order(coid)]}, timeout=40)
    assert result["status"] == "submitted" and result["order_id"] == str(first[0]["order_id"]), result
    assert result["evidence"]["failure"]["code"] == "GATEWAY_UNAVAILABLE"
    received = [o for o in fresh.state()["orders"] if o.get("cOID") == coid]
    assert len(received) == 1
    found = await bridge.ok("orders.lookup", {"account_id": ACCT, "client_order_id": coid}, timeout=40)
    assert found["found"] is True and found["order_id"] == result["order_id"]


async def test_cancel_live_orders_trades_whatif(bridge: Bridge, fresh: Sim) -> None:
    coid = f"lmt-{time.time_ns()}"
    fresh("POST", "/prices", {str(AAPL): {"bid": 199.5, "ask": 200.5, "last": 200}})
    placed = await bridge.ok("orders.place", {"account_id": ACCT, "orders": [
        order(coid, order_type="LMT", price="198")]}, timeout=40)
    if placed["status"] == "confirmation_required":
        placed = await bridge.ok("orders.reply", {"reply_id": placed["confirmation"]["reply_id"], "confirmed": True})
    assert placed["status"] == "submitted"
    live = await bridge.ok("orders.live", {"account_id": ACCT, "max_age_s": 0}, timeout=25)
    mine = [o for o in live["orders"] if o["client_order_id"] == coid]
    assert mine and mine[0]["status"] in ("submitted", "pre_submitted") and Decimal(mine[0]["price"]) == 198
    filtered = await bridge.ok("orders.live", {"status": ["filled"]}, timeout=25)
    assert all(o["status"] == "filled" for o in filtered["orders"])
    assert not [r for r in fresh.state()["requests"] if "filters" in r["path"]]
    cancelled = await bridge.ok("orders.cancel", {"account_id": ACCT, "order_id": placed["order_id"]}, timeout=40)
    assert cancelled["order_id"] == placed["order_id"]
    trades = await bridge.ok("trades.list", {"days": 1}, timeout=25)
    assert "trades" in trades
    whatif = await bridge.ok("orders.whatif", {"account_id": ACCT, "orders": [order("w1", order_type="LMT",
                                                                                     price="198")]}, timeout=40)
    assert "commission" in whatif
    assert (await bridge.ok("orders.suppress", {"message_ids": ["o354"]}))["status"]
    assert (await bridge.ok("orders.suppress_reset", {}))["status"]


async def test_429_answers_rate_limited_and_stays_out_of_the_penalty_box(bridge: Bridge, fresh: Sim) -> None:
    import httpx

    # provoke IBKR's penalty box from outside the bridge (same client IP), then ask through the bridge
    with httpx.Client(base_url=fresh.http.base_url, verify=False) as direct:
        for _ in range(3):
            direct.get("/v1/api/iserver/account/trades")
    before = len(fresh.api_requests("/iserver/account/trades"))
    first = await bridge.error("trades.list", {}, timeout=25)
    assert first["code"] == "RATE_LIMITED" and first["details"]["retry_after"] >= 500
    after_first = len(fresh.api_requests("/iserver/account/trades"))
    # one call finds the box (none when this bridge already met it in an earlier test of its worker) ...
    assert after_first - before in (0, 1)
    second = await bridge.error("trades.list", {}, timeout=25)
    assert second["code"] == "RATE_LIMITED"
    # ... and no call goes into the box once the bridge knows it
    assert len(fresh.api_requests("/iserver/account/trades")) == after_first


async def test_gateway_call_events_without_account_numbers(bridge: Bridge, fresh: Sim) -> None:
    js = bridge.nc.jetstream()
    sub = await js.subscribe(f"ibkr.{bridge.conn}.events.gateway.call", ordered_consumer=True,
                             deliver_policy="new")
    await bridge.ok("accounts.summary", {"account_id": ACCT})
    events = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            msg = await sub.next_msg(timeout=1)
        except Exception:
            break
        events.append(json.loads(msg.data))
    await sub.unsubscribe()
    paths = {e["payload"]["path"] for e in events}
    assert "/portfolio/{accountId}/summary" in paths
    for e in events:
        assert e["type"] == "gateway.call" and e["source"] == "gateway-bridge"
        assert ACCT not in json.dumps(e)
        assert {"method", "status", "latency_ms", "queue_wait_ms", "retries", "priority"} <= set(e["payload"])
