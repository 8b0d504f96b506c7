"""`compliance.status` lists the account's open IBKR questions, whoever placed the order, and the halt's reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from .compliance_stack import (
    AAPL,
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


async def _status(nc: Any, st: Stack, account_id: str = ACCOUNT) -> dict[str, Any]:
    reply = await call(nc, st, "compliance.status", {"user_id": USER, "account_id": account_id})
    assert reply["ok"], reply
    result: dict[str, Any] = reply["result"]
    return result


async def test_status_lists_open_questions_of_the_account_until_they_are_answered(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    by_conid, by_symbol = coid("q1"), coid("q2")  # the gateway keeps the newest question only: the first goes
    # stale at the second (its answer finds it gone), and is listed until someone answers it
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        before = await _status(nats_client, stack)
        first = await call(nats_client, stack, "orders.submit", order(by_conid, limit_price="1.00"))
        second = await call(nats_client, stack, "orders.submit", order(
            by_symbol, instrument={"symbol": "AAPL", "sec_type": "STK"}, quantity="2", limit_price="1.50"))
        asking = await _status(nats_client, stack)
        elsewhere = await _status(nats_client, stack, "DU0000001")
        confirmed = await call(nats_client, stack, "orders.confirm", {
            "client_order_id": by_symbol, "reply_id": second["result"]["confirmation"]["reply_id"],
            "confirmed": True})
        between = await _status(nats_client, stack)
        declined = await call(nats_client, stack, "orders.confirm", {
            "client_order_id": by_conid, "reply_id": first["result"]["confirmation"]["reply_id"],
            "confirmed": False})
        after = await _status(nats_client, stack)
    assert before["questions"] == [] and before["questions_truncated"] is False
    assert first["result"]["status"] == second["result"]["status"] == "confirmation_required", (first, second)
    newest, oldest = asking["questions"]
    assert [newest["client_order_id"], oldest["client_order_id"]] == [by_symbol, by_conid]
    assert datetime.fromisoformat(newest["asked_at"]) >= datetime.fromisoformat(oldest["asked_at"])
    assert datetime.fromisoformat(oldest["asked_at"]).utcoffset() is not None
    for asked, listed in ((first, oldest), (second, newest)):
        question = asked["result"]["confirmation"]
        assert (listed["reply_id"], listed["messages"], listed["message_ids"]) == (
            question["reply_id"], question["messages"], question["message_ids"])
        assert listed["messages"] and "o163" in listed["message_ids"] and listed["action"] == "place"
    assert oldest["order"] == {"symbol": None, "conid": AAPL, "sec_type": None, "side": "BUY", "quantity": "1",
                               "order_type": "LMT", "limit_price": "1.00", "stop_price": None, "tif": "DAY"}
    assert newest["order"]["symbol"] == "AAPL" and newest["order"]["sec_type"] == "STK"
    assert (newest["order"]["quantity"], newest["order"]["limit_price"]) == ("2", "1.50")
    assert elsewhere["questions"] == []
    assert confirmed["result"]["status"] == "submitted", confirmed["result"]["message"]
    assert [q["client_order_id"] for q in between["questions"]] == [by_conid]
    assert declined["result"]["status"] == "rejected", declined
    assert after["questions"] == []


async def test_status_carries_the_halt_reason_who_and_when_while_halted(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    async with start_compliance(sqlite_url):
        running = await _status(nats_client, stack)
        halted = await call(nats_client, stack, "trading.halt", {"reason": "desk review", "changed_by": "ops:bob"})
        during = await _status(nats_client, stack)
        resumed = await call(nats_client, stack, "trading.resume", {"reason": "review done", "changed_by": "ops:eve"})
        after = await _status(nats_client, stack)
    assert running["halted"] is False and running["halt"] is None
    assert halted["ok"] and during["halted"] is True
    assert {k: during["halt"][k] for k in ("reason", "changed_by")} == {"reason": "desk review",
                                                                       "changed_by": "ops:bob"}
    assert datetime.fromisoformat(during["halt"]["changed_at"]).utcoffset() is not None
    assert resumed["ok"] and after["halted"] is False and after["halt"] is None
