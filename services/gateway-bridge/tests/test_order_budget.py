"""The order budget (IBKR_BRIDGE_ORDER_BUDGET_S): an order operation answers within it, through cpsim faults."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

ACCT = "DU1234567"
AAPL = 265598
BUDGET_S = 8.0
#: NATS round trip and scheduling on a busy machine.
SLACK_S = 1.0
Sim = Any

pytestmark = pytest.mark.connected


def order(coid: str) -> dict[str, Any]:
    return {"conid": AAPL, "side": "BUY", "quantity": "1", "order_type": "MKT", "tif": "DAY", "cOID": coid}


def order_posts(sim: Sim) -> list[dict[str, Any]]:
    return [r for r in sim.state()["requests"] if r["method"] == "POST" and r["path"].endswith(f"{ACCT}/orders")]


async def test_lost_order_answer_is_unknown_within_the_budget_and_sent_once(
        own_bridge: Any, fresh: Sim) -> None:
    coid, other = f"budget-{time.time_ns()}", f"busy-{time.time_ns()}"
    # the order POST outlasts its read timeout, and every lookup (live orders, trades) hangs: without a
    # budget this takes two lookup rounds of read timeouts and 1-per-5-s spacing (about 30 s here)
    fresh("POST", "/faults", [
        {"path_glob": f"*/iserver/account/{ACCT}/orders", "method": "POST", "delay_ms": 10_000},
        {"path_glob": "*/iserver/account/orders", "method": "GET", "delay_ms": 20_000, "count": 5},
        {"path_glob": "*/iserver/account/trades", "method": "GET", "delay_ms": 20_000, "count": 5},
    ])
    try:
        async with own_bridge("budget", IBKR_BRIDGE_ORDER_BUDGET_S=BUDGET_S,
                              IBKR_BRIDGE_REQUEST_TIMEOUT_S=8) as bridge:
            async def place(c: str, after_s: float) -> tuple[dict[str, Any], float]:
                await asyncio.sleep(after_s)
                started = time.monotonic()
                reply = await bridge.request("orders.place", {"account_id": ACCT, "orders": [order(c)]}, timeout=40)
                return reply, time.monotonic() - started

            (first, first_s), (second, second_s) = await asyncio.gather(place(coid, 0), place(other, 0.3))
    finally:
        fresh("DELETE", "/faults")

    assert first["ok"] is True, first
    result = first["result"]
    assert first_s < BUDGET_S + SLACK_S, first_s
    assert result["status"] == "unknown" and result["client_order_id"] == coid, result
    evidence = result["evidence"]
    assert evidence["failure"]["code"] == "TIMEOUT"
    assert evidence["budget_exhausted"] is True and evidence["budget_s"] == BUDGET_S
    assert evidence["lookups"] and evidence["lookups"][0]["checked_at"]
    assert "do not re-send" in evidence["advice"]

    # the second order waited for the order lock; with too little of its budget left it was not sent
    assert second["ok"] is False, second
    assert second["error"]["code"] == "RATE_LIMITED" and second["error"]["details"]["sent"] is False
    assert second_s < BUDGET_S + SLACK_S, second_s

    deadline = time.monotonic() + 6  # the delayed POST is logged by cpsim when its delay is over
    while not order_posts(fresh) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert len(order_posts(fresh)) == 1  # one POST: the first order, never re-sent; the second never left
    received = [o for o in fresh.state()["orders"] if o.get("cOID") in (coid, other)]
    assert len(received) <= 1 and all(o.get("cOID") == coid for o in received)


async def test_lookup_answers_within_the_budget_with_what_it_learnt(
        own_bridge: Any, fresh: Sim) -> None:
    fresh("POST", "/faults", {"path_glob": "*/iserver/account/trades", "method": "GET", "delay_ms": 20_000})
    try:
        async with own_bridge("lookup", IBKR_BRIDGE_ORDER_BUDGET_S=4,
                              IBKR_BRIDGE_REQUEST_TIMEOUT_S=8) as bridge:
            started = time.monotonic()
            found = await bridge.ok("orders.lookup", {"account_id": ACCT, "client_order_id": "nobody"}, timeout=40)
            elapsed = time.monotonic() - started
    finally:
        fresh("DELETE", "/faults")
    assert elapsed < 4 + SLACK_S, elapsed
    assert found["found"] is False
    evidence = found["evidence"]
    assert "live_orders_checked" in evidence  # learnt before the trades call hung
    assert evidence.get("budget_exhausted") is True or evidence["trades_error"]["code"] == "TIMEOUT", evidence
