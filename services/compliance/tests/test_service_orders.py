"""orders.submit / orders.check through NATS against cpsim, the real bridge, sync-worker and session-keeper."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.db.models import OrderLedger

from .compliance_stack import (
    ACCOUNT,
    USER,
    Stack,
    acknowledged,
    call,
    coid,
    order,
    stack,
    start_compliance,
    synced,
)

pytestmark = [pytest.mark.connected, pytest.mark.timeout(180)]
__all__ = ["stack", "start_compliance"]


async def test_submit_places_an_allowed_order_once_and_returns_the_ibkr_order_id(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        cid = coid("place")
        reply = await call(nats_client, stack, "orders.submit", order(cid))
        # read at once, compliance still running, from another engine: the outcome is committed already
        engine = make_engine(sqlite_url)
        try:
            async with make_sessionmaker(engine)() as session:
                row = (await session.execute(select(OrderLedger).where(OrderLedger.client_order_id == cid))
                       ).scalar_one()
        finally:
            await engine.dispose()
        assert reply["ok"], reply
        result = reply["result"]
        assert result["status"] == "submitted" and result["order_id"]
        assert result["decision"] in ("allow", "warn")
        assert (row.status, row.order_id, row.result["status"]) == ("submitted", result["order_id"], "submitted")
        assert len(stack.received(cid)) == 1


async def test_same_client_order_id_twice_returns_the_first_result_and_sends_nothing_more(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        cid = coid("idem")
        first = await call(nats_client, stack, "orders.submit", order(cid))
        second = await call(nats_client, stack, "orders.submit", order(cid))
    async with start_compliance(sqlite_url):
        third = await call(nats_client, stack, "orders.submit", order(cid))
    assert first["ok"] and first["result"]["order_id"]
    # the outcome is committed before the answer: a repeat at once sees it, never `pending`
    assert second["result"]["status"] == third["result"]["status"] == "submitted", (second, third)
    assert second["result"]["order_id"] == first["result"]["order_id"]
    assert third["result"]["order_id"] == first["result"]["order_id"]
    assert len(stack.received(cid)) == 1


async def test_order_beyond_buying_power_is_blocked_and_never_reaches_the_gateway(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        cid = coid("big")
        reply = await call(nats_client, stack, "orders.submit", order(cid, quantity="100000", limit_price="150.00"))
    assert reply["ok"] is False
    assert reply["error"]["code"] == "COMPLIANCE_BLOCKED"
    codes = [r["code"] for r in reply["error"]["details"]["reasons"]]
    assert "INSUFFICIENT_BUYING_POWER" in codes
    assert stack.received(cid) == []


async def test_check_answers_ok_with_the_decision_whatever_it_is(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        cid = coid("chk")
        blocked = await call(nats_client, stack, "orders.check", order(cid, quantity="100000"))
        allowed = await call(nats_client, stack, "orders.check", order(coid("chk")))
    assert blocked["ok"] and blocked["result"]["decision"] == "block"
    assert allowed["ok"] and allowed["result"]["decision"] in ("allow", "warn")
    assert stack.received(cid) == []


async def test_orders_before_acknowledging_disclosures_are_blocked_then_allowed_after(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    user = f"new-{coid('u')}"
    async with start_compliance(sqlite_url):
        await synced(nats_client, stack)
        status = await call(nats_client, stack, "compliance.status", {"user_id": user, "account_id": ACCOUNT})
        before = await call(nats_client, stack, "orders.submit", order(coid("d1"), user_id=user))
        await acknowledged(nats_client, stack, user)
        after_status = await call(nats_client, stack, "compliance.status", {"user_id": user, "account_id": ACCOUNT})
        after = await call(nats_client, stack, "orders.submit", order(coid("d2"), user_id=user))
    assert sorted(status["result"]["missing_acknowledgments"]) == ["day_trading_risk", "options_risk"]
    assert before["ok"] is False
    assert "DISCLOSURES_NOT_ACKNOWLEDGED" in [r["code"] for r in before["error"]["details"]["reasons"]]
    assert after_status["result"]["missing_acknowledgments"] == []
    assert after["ok"] and after["result"]["status"] == "submitted"


assert USER
