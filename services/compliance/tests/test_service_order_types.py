"""Every order type end to end: compliance's orders.submit -> gateway-bridge -> cpsim -> a fill -> the
sync-worker's orders.get, positions and events; and positions.close through that same chain.

For each type the test reads what the gateway received (cpsim's log of place-order bodies) against
REFERENCE.md 7.4: `orderType` MKT / LMT / STP / STOP_LIMIT, `price` the limit (LMT, STOP_LIMIT) or the stop
(STP), `auxPrice` the stop of a STOP_LIMIT, and a combo's `conidex` `28812380;;;{leg}/{ratio},...`.

cpsim's clock is set to noon New York on an NYSE session (`stack_sim_clock` below), so the orders work in
regular hours whatever time the suite runs, and compliance runs on that clock too (its quotes are stamped
by cpsim's clock); prices stand still (no random walk) and are pinned per test.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ibkr_common.subjects import Subjects

from .compliance_stack import (
    AAPL,
    ACCOUNT,
    GatewayClock,
    Stack,
    acknowledged,
    call,
    coid,
    order,
    regular_hours,
    stack,
    start_compliance,
    synced,
    wait_until,
)

pytestmark = [pytest.mark.connected, pytest.mark.timeout(300)]
__all__ = ["stack", "start_compliance"]

MSFT = 272093
COMBO_CONID = 28812380  # IBKR's US combo conid, the head of a combo's conidex


@pytest.fixture(scope="module")
def stack_sim_clock() -> datetime:
    """cpsim trades in regular hours for this module (see compliance_stack.regular_hours)."""
    return regular_hours(datetime.now(UTC))


@pytest.fixture
def on_gateway_clock(start_compliance: Any, stack: Stack) -> Any:
    """compliance_stack's `start_compliance`, on cpsim's clock."""

    def run(database_url: str, **extra: Any) -> Any:
        return start_compliance(database_url, clock=GatewayClock(stack), **extra)

    return run


@pytest.fixture(autouse=True)
def still_market(stack: Stack) -> None:
    """Prices that move only when a test moves them, at their usual levels, and no position."""
    stack.sim("POST", "/market", {"walk": False})
    stack.sim("POST", "/prices", {"AAPL": {"bid": 229.99, "ask": 230.01, "last": 230},
                                  "MSFT": {"bid": 419.99, "ask": 420.01, "last": 420}})
    stack.sim("POST", f"/positions/{ACCOUNT}", [])


class Events:
    """The events of the stack's connection, as they arrive (a core NATS subscription)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def of(self, event_type: str, **payload_keys: Any) -> list[dict[str, Any]]:
        """Events of a type whose payload object (`order` or `position`) has these values."""
        out = []
        for e in self.items:
            if e["type"] != event_type:
                continue
            body = e["payload"].get("order") or e["payload"].get("position") or {}
            if all(body.get(k) == v for k, v in payload_keys.items()):
                out.append(e)
        return out

    async def wait(self, event_type: str, timeout: float = 30.0, **payload_keys: Any) -> dict[str, Any]:
        async def seen() -> bool:
            return bool(self.of(event_type, **payload_keys))

        await wait_until(seen, timeout, f"{event_type} {payload_keys} in {[e['type'] for e in self.items]}")
        return self.of(event_type, **payload_keys)[-1]


@pytest.fixture
async def events(nats_client: Any, stack: Stack) -> AsyncIterator[Events]:
    collected = Events()

    async def on_msg(msg: Any) -> None:
        collected.items.append({**json.loads(msg.data), "subject": msg.subject})

    sub = await nats_client.subscribe(stack.subjects, cb=on_msg)
    yield collected
    await sub.unsubscribe()


async def ready(nc: Any, stack: Stack) -> None:
    await acknowledged(nc, stack)
    await synced(nc, stack)


async def submit(nc: Any, stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    """orders.submit, which must place the order; returns the OrderResult."""
    reply = await call(nc, stack, "orders.submit", body)
    assert reply["ok"], reply
    result: dict[str, Any] = reply["result"]
    assert result["status"] == "submitted" and result["order_id"], result
    return result


def received(stack: Stack, cid: str, order_id: str) -> dict[str, Any]:
    """The one order body the gateway received with this cOID (accepted as `order_id`, the OrderResult's),
    without cpsim's bookkeeping."""
    [body] = stack.received(cid)
    assert (body["sim"]["outcome"], str(body["sim"]["order_id"])) == ("accepted", order_id), body
    return {k: v for k, v in body.items() if k != "sim"}


def booked(stack: Stack, order_id: str) -> dict[str, Any]:
    """The gateway's own record of an order (status, trigger state, fills)."""
    [o] = [o for o in stack.sim("GET", "/state")["order_book"] if str(o["order_id"]) == order_id]
    return o  # type: ignore[no-any-return]


async def synced_order(nc: Any, stack: Stack, order_id: str, status: str) -> dict[str, Any]:
    """The order as the sync-worker's orders.get reads it back once a sync saw it in `status`: syncs are
    asked for until then (within 30 s), since the bridge may answer a sync with a live-orders list read up
    to 5 s before (IBKR allows one read per 5 s)."""
    deadline = time.monotonic() + 30
    while True:
        await synced(nc, stack)
        reply = await call(nc, stack, "orders.get", {"account_id": ACCOUNT})
        assert reply["ok"], reply
        [found] = [o for o in reply["result"]["orders"] if o["order_id"] == order_id]
        if found["status"] == status or time.monotonic() > deadline:
            assert found["status"] == status, found
            return found  # type: ignore[no-any-return]
        await asyncio.sleep(1)


async def synced_positions(nc: Any, stack: Stack) -> dict[int, Decimal]:
    reply = await call(nc, stack, "positions.get", {"account_id": ACCOUNT})
    assert reply["ok"], reply
    return {p["conid"]: Decimal(p["quantity"]) for p in reply["result"]["positions"]}


def dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


async def test_market_order_is_placed_without_a_price_and_its_fill_reaches_the_sync_worker(
    nats_client: Any, stack: Stack, on_gateway_clock: Any, sqlite_url: str, events: Events
) -> None:
    async with on_gateway_clock(sqlite_url):
        await ready(nats_client, stack)
        cid = coid("mkt")
        result = await submit(nats_client, stack, order(cid, order_type="MKT", limit_price=None, quantity="5"))
        sent = received(stack, cid, result["order_id"])
        assert sent == {"acctId": ACCOUNT, "conid": AAPL, "orderType": "MKT", "side": "BUY", "quantity": 5,
                        "tif": "DAY", "cOID": cid}
        assert result["decision"] in ("allow", "warn")
        assert booked(stack, result["order_id"])["status"] == "Filled"
        seen = await synced_order(nats_client, stack, result["order_id"], "filled")
        filled = await events.wait("orders.filled", order_id=result["order_id"])
        opened = await events.wait("positions.opened", conid=AAPL)
    assert (seen["status"], seen["order_type"], seen["client_order_id"]) == ("filled", "MKT", cid)
    assert (seen["limit_price"], seen["stop_price"]) == (None, None)
    assert dec(seen["filled_quantity"]) == 5 and dec(seen["avg_fill_price"]) == Decimal("230.01")  # the ask
    assert filled["account_id"] == ACCOUNT and filled["payload"]["order"]["client_order_id"] == cid
    assert dec(opened["payload"]["position"]["quantity"]) == 5


async def test_stop_order_carries_its_stop_as_price_rests_until_the_last_price_crosses_then_fills(
    nats_client: Any, stack: Stack, on_gateway_clock: Any, sqlite_url: str, events: Events
) -> None:
    async with on_gateway_clock(sqlite_url):
        await ready(nats_client, stack)
        cid = coid("stp")
        result = await submit(nats_client, stack, order(cid, order_type="STP", limit_price=None,
                                                        stop_price="235.00", quantity="3"))
        sent = received(stack, cid, result["order_id"])
        assert sent == {"acctId": ACCOUNT, "conid": AAPL, "orderType": "STP", "side": "BUY", "quantity": 3,
                        "tif": "DAY", "cOID": cid, "price": 235.0}
        resting = await synced_order(nats_client, stack, result["order_id"], "pre_submitted")
        assert (resting["status"], resting["order_type"]) == ("pre_submitted", "STP")
        assert (dec(resting["stop_price"]), resting["limit_price"]) == (Decimal(235), None)

        stack.sim("POST", "/prices", {"AAPL": {"bid": 234.49, "ask": 234.51, "last": 234.50}})  # not yet
        assert booked(stack, result["order_id"])["status"] == "PreSubmitted"
        stack.sim("POST", "/prices", {"AAPL": {"bid": 235.99, "ask": 236.01, "last": 236}})  # elected
        assert booked(stack, result["order_id"])["status"] == "Filled"
        done = await synced_order(nats_client, stack, result["order_id"], "filled")
        await events.wait("orders.filled", order_id=result["order_id"])
    assert done["status"] == "filled" and dec(done["filled_quantity"]) == 3
    assert dec(done["avg_fill_price"]) == Decimal("236.01")  # a market order once elected: the ask


async def test_stop_limit_order_sends_limit_as_price_and_stop_as_aux_and_fills_only_within_its_limit(
    nats_client: Any, stack: Stack, on_gateway_clock: Any, sqlite_url: str, events: Events
) -> None:
    async with on_gateway_clock(sqlite_url):
        await ready(nats_client, stack)
        cid = coid("stplmt")
        result = await submit(nats_client, stack, order(cid, order_type="STP_LMT", limit_price="236.00",
                                                        stop_price="235.00", quantity="2"))
        sent = received(stack, cid, result["order_id"])
        assert sent == {"acctId": ACCOUNT, "conid": AAPL, "orderType": "STOP_LIMIT", "side": "BUY", "quantity": 2,
                        "tif": "DAY", "cOID": cid, "price": 236.0, "auxPrice": 235.0}
        resting = await synced_order(nats_client, stack, result["order_id"], "pre_submitted")
        assert (resting["status"], resting["order_type"]) == ("pre_submitted", "STP_LMT")
        assert (dec(resting["limit_price"]), dec(resting["stop_price"])) == (Decimal(236), Decimal(235))

        stack.sim("POST", "/prices", {"AAPL": {"bid": 239.99, "ask": 240.01, "last": 240}})  # elected, above limit
        gateway = booked(stack, result["order_id"])
        assert (gateway["status"], gateway["filled"]) == ("Submitted", 0)
        working = await synced_order(nats_client, stack, result["order_id"], "submitted")
        assert working["status"] == "submitted" and not events.of("orders.filled", order_id=result["order_id"])

        stack.sim("POST", "/prices", {"AAPL": {"bid": 235.49, "ask": 235.51, "last": 235.50}})  # within the limit
        assert booked(stack, result["order_id"])["status"] == "Filled"
        done = await synced_order(nats_client, stack, result["order_id"], "filled")
        await events.wait("orders.filled", order_id=result["order_id"])
    assert done["status"] == "filled" and dec(done["avg_fill_price"]) == Decimal("235.51")


async def test_modifying_a_stop_limit_order_sends_the_whole_order_again_with_the_new_stop_and_limit(
    nats_client: Any, stack: Stack, on_gateway_clock: Any, sqlite_url: str, events: Events
) -> None:
    async with on_gateway_clock(sqlite_url):
        await ready(nats_client, stack)
        cid = coid("modify")
        result = await submit(nats_client, stack, order(cid, order_type="STP_LMT", limit_price="236.00",
                                                        stop_price="235.00", quantity="1"))
        reply = await call(nats_client, stack, "orders.modify", {
            "account_id": ACCOUNT, "order_id": result["order_id"], "stop_price": "233.00", "limit_price": "234.00"})
        assert reply["ok"] and reply["result"]["order_id"] == result["order_id"], reply
        [change] = [m for m in stack.sim("GET", "/state")["modifications"] if str(m["order_id"]) == result["order_id"]]
        assert change["body"] == {"acctId": ACCOUNT, "conid": AAPL, "orderType": "STOP_LIMIT", "side": "BUY",
                                  "quantity": 1, "tif": "DAY", "price": 234.0, "auxPrice": 233.0}
        gateway = booked(stack, result["order_id"])
        assert (gateway["status"], gateway["stop"], gateway["limit"]) == ("PreSubmitted", 233.0, 234.0)

        stack.sim("POST", "/prices", {"AAPL": {"bid": 233.49, "ask": 233.51, "last": 233.50}})  # the new stop
        assert booked(stack, result["order_id"])["status"] == "Filled"
        done = await synced_order(nats_client, stack, result["order_id"], "filled")
        await events.wait("orders.filled", order_id=result["order_id"])
    assert (dec(done["stop_price"]), dec(done["limit_price"])) == (Decimal(233), Decimal(234))
    assert done["status"] == "filled" and dec(done["avg_fill_price"]) == Decimal("233.51")


async def _options(nc: Any, stack: Stack, strikes: dict[str, str]) -> dict[str, dict[str, Any]]:
    """AAPL options of a monthly expiry about two months out: `{"230C": {conid, expiry, ...}}`, through the
    bridge's secdef reads (the search first, as the gateway wants)."""
    subjects = Subjects(stack.conn)
    search = await call(nc, stack, "contracts.search", {"symbol": "AAPL", "sec_type": "STK"})
    assert search["ok"], search
    [aapl] = [c for c in search["result"]["contracts"] if c["conid"] == AAPL]
    month = aapl["option_months"][-1]
    found: dict[str, dict[str, Any]] = {}
    for key, right in strikes.items():
        msg = await nc.request(subjects.bridge("contracts.secdef_info"), json.dumps(
            {"conid": AAPL, "sec_type": "OPT", "month": month, "strike": key[:-1], "right": right}).encode(),
            timeout=30)
        reply = json.loads(msg.data)
        assert reply["ok"], reply
        series = sorted(reply["result"]["contracts"], key=lambda c: c["expiry"])
        found[key] = series[-1]  # the monthly: the last expiry of the month
    return found


def pin_options(stack: Stack, quotes: dict[int, tuple[str, str]]) -> None:
    """Pin option quotes (bid, ask), so a combo's net price is known."""
    stack.sim("POST", "/prices", {
        str(conid): {"bid": float(bid), "ask": float(ask), "last": float((Decimal(bid) + Decimal(ask)) / 2)}
        for conid, (bid, ask) in quotes.items()
    })


async def test_vertical_spread_is_one_combo_order_whose_legs_fill_as_positions(
    nats_client: Any, stack: Stack, on_gateway_clock: Any, sqlite_url: str, events: Events
) -> None:
    async with on_gateway_clock(sqlite_url):
        await ready(nats_client, stack)
        legs = await _options(nats_client, stack, {"230C": "C", "240C": "C"})
        low, high = legs["230C"], legs["240C"]
        pin_options(stack, {low["conid"]: ("8.00", "8.10"), high["conid"]: ("3.90", "4.00")})  # net ask 4.20
        cid = coid("vert")
        spread = order(cid, instrument=None, limit_price="4.20", quantity="2", legs=[
            {"instrument": {"symbol": "AAPL", "sec_type": "OPT", "expiry": low["expiry"], "strike": "230",
                            "right": "C"}, "side": "BUY", "ratio": 1},
            {"instrument": {"symbol": "AAPL", "sec_type": "OPT", "expiry": high["expiry"], "strike": "240",
                            "right": "C"}, "side": "SELL", "ratio": 1},
        ])
        result = await submit(nats_client, stack, spread)
        sent = received(stack, cid, result["order_id"])
        assert sent == {"acctId": ACCOUNT, "conidex": f"{COMBO_CONID};;;{low['conid']}/1,{high['conid']}/-1",
                        "orderType": "LMT", "side": "BUY", "quantity": 2, "tif": "DAY", "cOID": cid, "price": 4.2}
        assert booked(stack, result["order_id"])["status"] == "Filled"
        done = await synced_order(nats_client, stack, result["order_id"], "filled")
        held = await synced_positions(nats_client, stack)
        await events.wait("positions.opened", conid=low["conid"])
        await events.wait("positions.opened", conid=high["conid"])
    assert done["status"] == "filled" and dec(done["filled_quantity"]) == 2
    assert (held.get(low["conid"]), held.get(high["conid"])) == (2, -2)


async def test_iron_condor_is_one_four_leg_combo_sold_for_a_credit(
    nats_client: Any, stack: Stack, on_gateway_clock: Any, sqlite_url: str, events: Events
) -> None:
    async with on_gateway_clock(sqlite_url):
        await ready(nats_client, stack)
        legs = await _options(nats_client, stack, {"210P": "P", "220P": "P", "240C": "C", "250C": "C"})
        wing_p, short_p, short_c, wing_c = (legs[k]["conid"] for k in ("210P", "220P", "240C", "250C"))
        pin_options(stack, {wing_p: ("1.00", "1.05"), short_p: ("2.40", "2.45"),
                            short_c: ("3.90", "3.95"), wing_c: ("1.80", "1.85")})
        # sold for a credit: SELL the combo whose legs buy the short strikes (IBKR reverses every leg of a sell)
        cid = coid("condor")
        condor = order(cid, instrument=None, side="SELL", limit_price="3.40", quantity="1", legs=[
            {"instrument": {"conid": wing_p}, "side": "SELL", "ratio": 1},
            {"instrument": {"conid": short_p}, "side": "BUY", "ratio": 1},
            {"instrument": {"conid": short_c}, "side": "BUY", "ratio": 1},
            {"instrument": {"conid": wing_c}, "side": "SELL", "ratio": 1},
        ])
        result = await submit(nats_client, stack, condor)
        sent = received(stack, cid, result["order_id"])
        assert sent == {"acctId": ACCOUNT, "orderType": "LMT", "side": "SELL", "quantity": 1, "tif": "DAY",
                        "cOID": cid, "price": 3.4,
                        "conidex": f"{COMBO_CONID};;;{wing_p}/-1,{short_p}/1,{short_c}/1,{wing_c}/-1"}
        assert booked(stack, result["order_id"])["status"] == "Filled"  # the combo bid: 2.40+3.90-1.05-1.85
        done = await synced_order(nats_client, stack, result["order_id"], "filled")
        held = await synced_positions(nats_client, stack)
    assert done["status"] == "filled" and dec(done["filled_quantity"]) == 1
    assert [held.get(c) for c in (wing_p, short_p, short_c, wing_c)] == [1, -1, -1, 1]


async def test_positions_close_closes_a_real_position_through_compliance_the_bridge_and_the_gateway(
    nats_client: Any, stack: Stack, on_gateway_clock: Any, sqlite_url: str, events: Events
) -> None:
    async with on_gateway_clock(sqlite_url):
        await ready(nats_client, stack)
        bought = await submit(nats_client, stack, order(coid("buy"), instrument={"conid": MSFT}, order_type="MKT",
                                                        limit_price=None, quantity="10"))
        await synced_order(nats_client, stack, bought["order_id"], "filled")
        assert (await synced_positions(nats_client, stack)).get(MSFT) == 10

        part = await call(nats_client, stack, "positions.close",
                          {"account_id": ACCOUNT, "conid": MSFT, "user_id": "alice", "quantity": "4",
                           "client_order_id": (first := coid("close"))}, timeout=60)
        assert part["ok"], part
        assert part["result"]["status"] == "submitted" and part["result"]["order_id"]
        sent = received(stack, first, part["result"]["order_id"])
        assert sent == {"acctId": ACCOUNT, "conid": MSFT, "orderType": "MKT", "side": "SELL", "quantity": 4,
                        "tif": "DAY", "cOID": first}
        assert booked(stack, part["result"]["order_id"])["status"] == "Filled"
        reduced = await synced_order(nats_client, stack, part["result"]["order_id"], "filled")
        assert reduced["status"] == "filled" and reduced["side"] == "SELL"
        changed = await events.wait("positions.changed", conid=MSFT)
        assert dec(changed["payload"]["position"]["quantity"]) == 6
        assert (await synced_positions(nats_client, stack)).get(MSFT) == 6

        # the rest behind a stop-loss: a SELL stop below the price, through positions.close too
        rest = await call(nats_client, stack, "positions.close",
                          {"account_id": ACCOUNT, "conid": MSFT, "user_id": "alice", "order_type": "STP",
                           "stop_price": "415", "client_order_id": (second := coid("close"))}, timeout=60)
        assert rest["ok"] and rest["result"]["status"] == "submitted", rest
        sent = received(stack, second, rest["result"]["order_id"])
        assert sent == {"acctId": ACCOUNT, "conid": MSFT, "orderType": "STP", "side": "SELL", "quantity": 6,
                        "tif": "DAY", "cOID": second, "price": 415.0}
        stop = await synced_order(nats_client, stack, rest["result"]["order_id"], "pre_submitted")
        assert (stop["status"], dec(stop["stop_price"])) == ("pre_submitted", Decimal(415))
        assert (await synced_positions(nats_client, stack)).get(MSFT) == 6
        stack.sim("POST", "/prices", {"MSFT": {"bid": 413.99, "ask": 414.01, "last": 414}})  # through the stop
        assert booked(stack, rest["result"]["order_id"])["status"] == "Filled"
        await synced_order(nats_client, stack, rest["result"]["order_id"], "filled")
        closed = await events.wait("positions.closed", conid=MSFT)
        gone = await synced_positions(nats_client, stack)
    assert MSFT not in gone
    assert changed["subject"] == Subjects(stack.conn).event("positions.changed", ACCOUNT)
    assert closed["subject"] == Subjects(stack.conn).event("positions.closed", ACCOUNT)
    assert dec(closed["payload"]["previous"]["quantity"]) == 6
    assert [fill["price"] for fill in stack.sim("GET", "/state")["accounts"][ACCOUNT]["executions"]
            if fill["order_id"] == int(rest["result"]["order_id"])] == [413.99]  # sold at the bid once elected
