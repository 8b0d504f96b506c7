"""Bad input, questions policy, halt/resume, cancel/modify, decision log and events, crash resolution."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from cpsim.market import expiries
from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.db.models import ComplianceDecisionLog, OrderLedger

from .compliance_stack import (
    AAPL,
    ACCOUNT,
    OPTIONS_LEVEL,
    USER,
    Stack,
    acknowledged,
    call,
    coid,
    order,
    stack,
    start_compliance,
    synced,
    wait_until,
)

pytestmark = [pytest.mark.connected, pytest.mark.timeout(180)]
__all__ = ["stack", "start_compliance"]


async def _rows(url: str, model: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.execute(select(model))).scalars().all())
    finally:
        await engine.dispose()


async def test_schema_errors_answer_validation_error_naming_each_field(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    async with start_compliance(sqlite_url):
        negative = await call(nats_client, stack, "orders.submit", order(coid(), quantity=-5))
        no_price = await call(nats_client, stack, "orders.submit", order(coid(), limit_price=None))
        garbage = await call(nats_client, stack, "orders.submit", b"{not json")
    assert negative["error"]["code"] == "VALIDATION_ERROR"
    assert [d["field"] for d in negative["error"]["details"]] == ["quantity"]
    assert no_price["error"]["code"] == "VALIDATION_ERROR"
    assert garbage["error"]["code"] == "VALIDATION_ERROR"


async def test_live_order_on_the_paper_connection_is_environment_mismatch_and_logged(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    cid = coid("env")
    async with start_compliance(sqlite_url):
        reply = await call(nats_client, stack, "orders.submit", order(cid, environment="live"))
    assert reply["ok"] is False and reply["error"]["code"] == "ENVIRONMENT_MISMATCH"
    rows = [r for r in await _rows(sqlite_url, ComplianceDecisionLog) if r.client_order_id == cid]
    assert rows and rows[0].decision == "block" and rows[0].reason_codes == ["ENVIRONMENT_MISMATCH"]
    assert stack.received(cid) == []


async def test_unknown_account_answers_not_found(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    async with start_compliance(sqlite_url):
        reply = await call(nats_client, stack, "orders.check", order(coid(), account_id="DU0000000"))
    assert reply["ok"] is False and reply["error"]["code"] == "NOT_FOUND"


async def test_check_at_another_time_evaluates_as_of_then(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    saturday = "2026-11-28T15:00:00+00:00"
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        reply = await call(nats_client, stack, "orders.check", order(coid("at"), at=saturday))
        submit = await call(nats_client, stack, "orders.submit", order(coid("at"), at=saturday))
    assert reply["ok"]
    codes = [r["code"] for r in reply["result"]["reasons"]]
    assert "ORDER_QUEUED_UNTIL_NEXT_SESSION" in codes
    assert reply["result"]["computed"]["next_session"] == "2026-11-30"
    assert submit["error"]["code"] == "VALIDATION_ERROR"


async def test_check_at_a_later_time_measures_data_age_on_the_real_clock(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=20)).isoformat()
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        reply = await call(nats_client, stack, "orders.check", order(coid("later"), at=later))
    codes = [r["code"] for r in reply["result"]["reasons"]]
    assert reply["ok"] and "STALE_ACCOUNT_DATA" not in codes, codes
    assert Decimal(reply["result"]["computed"]["snapshot_age_s"]) < 60


async def test_selling_an_option_is_figured_on_the_underlying_price_not_the_strike(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    today = datetime.now(UTC).date()
    expiry = next(d for d in expiries(today) if (d - today).days > 20)
    month = f"{expiry:%b%y}".upper()
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        chain = await call(nats_client, stack, "contracts.option_chain", {"underlying_conid": AAPL, "month": month})
        strike = min(Decimal(str(k)) for k in chain["result"]["calls"])  # deep in the money
        instrument = {"symbol": "AAPL", "sec_type": "OPT", "expiry": expiry.isoformat(), "strike": str(strike),
                      "right": "C"}
        reply = await call(nats_client, stack, "orders.check",
                           order(coid("naked"), instrument=instrument, side="SELL", limit_price="1.00"))
    last = Decimal(str(stack.sim("GET", "/state")["prices"][str(AAPL)]["last"]))
    assert reply["ok"], reply
    decision = reply["result"]
    # an uncovered call at the account's level 4 (OPTIONS_LEVEL): allowed, so the figures below are the ones used
    assert decision["decision"] in ("allow", "warn"), decision["reasons"]
    computed = decision["computed"]
    assert (computed["strategy"], computed["options_level"]) == ("naked_call", OPTIONS_LEVEL), computed
    assert computed.get("underlying_price_assumed") is None, computed
    # in the money: (premium + 20% of the underlying) x 100, so the underlying it was figured on is
    underlying = (Decimal(computed["requirement"]) / 100 - Decimal(computed["price"])) / Decimal("0.2")
    assert abs(underlying - last) < last * Decimal("0.05"), (underlying, last)  # AAPL's price, which walks
    assert underlying > strike * Decimal("1.1"), (underlying, strike)  # not the strike


async def test_a_cash_account_is_checked_against_its_settled_cash_from_the_sync(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    cash_account, cid = "DU7654321", coid("cash")
    stack.sim("POST", f"/accounts/{cash_account}", {"account_type": "cash", "cash": 20000})
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        synced_cash = await call(nats_client, stack, "sync.trigger", {"account_id": cash_account}, timeout=60)
        reply = await call(nats_client, stack, "orders.check", order(cid, account_id=cash_account))
    assert synced_cash["ok"] and reply["ok"], (synced_cash, reply)
    [row] = [r for r in await _rows(sqlite_url, ComplianceDecisionLog) if r.client_order_id == cid]
    assert Decimal(row.state_snapshot["account"]["settled_cash"]) == 20000, row.state_snapshot["account"]


async def test_ibkr_question_asks_the_user_and_confirm_submits_with_the_answer_logged(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    cid = coid("ask")
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        asked = await call(nats_client, stack, "orders.submit", order(cid, limit_price="1.00"))
        question = asked["result"]["confirmation"]
        confirmed = await call(nats_client, stack, "orders.confirm",
                               {"client_order_id": cid, "reply_id": question["reply_id"], "confirmed": True,
                                "answered_by": "user:alice"})
        again = await call(nats_client, stack, "orders.submit", order(cid, limit_price="1.00"))
    assert asked["ok"] and asked["result"]["status"] == "confirmation_required"
    assert "o163" in question["message_ids"] and question["messages"]
    assert confirmed["ok"] and confirmed["result"]["status"] == "submitted" and confirmed["result"]["order_id"]
    assert again["result"]["order_id"] == confirmed["result"]["order_id"]
    answers = [r for r in await _rows(sqlite_url, ComplianceDecisionLog) if r.action == "answer"]
    assert [(a.order["answered_by"], a.order["confirmed"]) for a in answers] == [("user:alice", True)]
    assert len(stack.received(cid)) == 1


async def test_declining_a_question_records_the_order_rejected(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    cid = coid("no")
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        asked = await call(nats_client, stack, "orders.submit", order(cid, limit_price="1.00"))
        declined = await call(nats_client, stack, "orders.confirm",
                              {"client_order_id": cid, "reply_id": asked["result"]["confirmation"]["reply_id"],
                               "confirmed": False})
    assert declined["ok"] and declined["result"]["status"] == "rejected"
    assert declined["result"]["order_id"] is None


async def test_policy_reject_answers_no_and_auto_confirm_answers_yes_both_logged(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    rejected, confirmed = coid("rej"), coid("auto")
    async with start_compliance(sqlite_url, question_policy="o383=reject,o10331=auto_confirm"):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        stack.sim("POST", "/questions", {"message_ids": ["o383"]})
        first = await call(nats_client, stack, "orders.submit", order(rejected))
        stack.sim("POST", "/questions", {"message_ids": ["o10331"]})
        second = await call(nats_client, stack, "orders.submit", order(confirmed))
    assert first["ok"] and first["result"]["status"] == "rejected"
    assert second["ok"] and second["result"]["status"] == "submitted" and second["result"]["order_id"]
    answers = {r.client_order_id: r.order["answered_by"]
               for r in await _rows(sqlite_url, ComplianceDecisionLog) if r.action == "answer"}
    assert answers == {rejected: "policy:reject", confirmed: "policy:auto_confirm"}


async def test_halt_blocks_opening_orders_allows_closing_ones_until_resumed(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    stack.sim("POST", f"/positions/{ACCOUNT}", [{"conid": AAPL, "symbol": "AAPL", "sec_type": "STK",
                                                   "quantity": 10, "avg_price": 200, "market_price": 230}])
    try:
        async with start_compliance(sqlite_url):
            await acknowledged(nats_client, stack)
            await synced(nats_client, stack)
            halted = await call(nats_client, stack, "trading.halt", {"reason": "test"})
            opening = await call(nats_client, stack, "orders.check", order(coid("h")))
            closing = await call(nats_client, stack, "orders.check",
                                 order(coid("h"), side="SELL", position_effect="close"))
            status = await call(nats_client, stack, "compliance.status", {"user_id": USER, "account_id": ACCOUNT})
            submit = await call(nats_client, stack, "orders.submit", order(coid("h")))
            resumed = await call(nats_client, stack, "trading.resume", {"reason": "test over"})
            after = await call(nats_client, stack, "orders.check", order(coid("h")))
    finally:
        stack.sim("POST", f"/positions/{ACCOUNT}", [])
    assert halted["result"]["halted"] is True and status["result"]["halted"] is True
    assert opening["result"]["decision"] == "block"
    assert "TRADING_HALTED" in [r["code"] for r in opening["result"]["reasons"]]
    assert closing["result"]["decision"] in ("allow", "warn")
    assert submit["error"]["code"] == "TRADING_HALTED"
    assert resumed["result"]["halted"] is False and after["result"]["decision"] in ("allow", "warn")


async def test_every_decision_is_logged_and_published_with_the_submitted_event(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    seen: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        seen.append(json.loads(msg.data))

    sub = await nats_client.subscribe(f"ibkr.{stack.conn}.events.>", cb=collect)
    cid = coid("ev")
    fill_time = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()
    stack.sim("POST", f"/trades/{ACCOUNT}", [{"time": fill_time, "conid": 272093, "symbol": "MSFT", "side": "BUY",
                                              "quantity": 1, "price": 400}])
    try:
        async with start_compliance(sqlite_url):
            await acknowledged(nats_client, stack)
            await synced(nats_client, stack)
            placed = await call(nats_client, stack, "orders.submit", order(cid))

            async def published() -> bool:
                types = {e["type"] for e in seen if e.get("correlation_id") == cid}
                return {"compliance.allowed", "orders.submitted"} <= types or {
                    "compliance.warned", "orders.submitted"} <= types

            await wait_until(published, what="compliance and orders events")
    finally:
        await sub.unsubscribe()
    rows = [r for r in await _rows(sqlite_url, ComplianceDecisionLog) if r.client_order_id == cid]
    assert [r.action for r in rows] == ["submit"]
    assert rows[0].state_snapshot["account"]["account_id"] == ACCOUNT and rows[0].latency_ms is not None
    executions = rows[0].state_snapshot["executions_today"]  # what a day-trade decision was made on
    msft = [e for e in executions if e["symbol"] == "MSFT" and e["side"].upper() == "BUY"]
    assert msft and Decimal(msft[0]["qty"]) == 1, executions
    submitted = next(e for e in seen if e["type"] == "orders.submitted" and e["correlation_id"] == cid)
    assert submitted["payload"]["order_id"] == placed["result"]["order_id"] and submitted["source"] == "compliance"


async def test_pending_order_left_by_a_crash_is_resolved_by_cOID_lookup_without_resending(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    cid = coid("crash")
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        placed = await call(nats_client, stack, "orders.submit", order(cid))
    engine = make_engine(sqlite_url)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    async with make_sessionmaker(engine)() as session, session.begin():
        row = await session.get(OrderLedger, (stack.conn, cid))
        assert row is not None
        row.status, row.order_id, row.result = "pending", None, {**row.result, "status": "pending", "order_id": None}
        row.updated_at = long_ago
    async with start_compliance(sqlite_url):

        async def resolved() -> bool:
            async with make_sessionmaker(engine)() as session:
                current = await session.get(OrderLedger, (stack.conn, cid))
                return current is not None and current.status == "submitted"

        await wait_until(resolved, timeout=30, what="the pending row resolved")
        again = await call(nats_client, stack, "orders.submit", order(cid))
    await engine.dispose()
    assert again["result"]["order_id"] == placed["result"]["order_id"]
    assert len(stack.received(cid)) == 1


async def test_cancel_and_modify_go_through_the_bridge_and_modify_is_checked_again(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    cid = coid("mod")
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        placed = await call(nats_client, stack, "orders.submit", order(cid, limit_price="225.00"))
        oid = placed["result"]["order_id"]
        too_big = await call(nats_client, stack, "orders.modify",
                             {"account_id": ACCOUNT, "order_id": oid, "quantity": "100000"})
        changed = await call(nats_client, stack, "orders.modify",
                             {"account_id": ACCOUNT, "order_id": oid, "limit_price": "226.00"})
        cancelled = await call(nats_client, stack, "orders.cancel", {"account_id": ACCOUNT, "client_order_id": cid})
    assert too_big["ok"] is False and too_big["error"]["code"] == "COMPLIANCE_BLOCKED"
    assert changed["ok"], changed
    assert changed["result"]["status"] == "submitted", changed
    assert cancelled["ok"] and cancelled["result"]["order_id"] == oid
    assert len(stack.received(cid)) == 1


async def test_an_operator_set_restriction_blocks_opening_orders_until_its_last_day(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    stack.sim("POST", f"/positions/{ACCOUNT}", [{"conid": AAPL, "symbol": "AAPL", "sec_type": "STK",
                                                   "quantity": 10, "avg_price": 200, "market_price": 230}])
    try:
        async with start_compliance(sqlite_url, account_restrictions=f"{ACCOUNT.lower()}=closing_only"):
            await acknowledged(nats_client, stack)
            await synced(nats_client, stack)
            opening = await call(nats_client, stack, "orders.check", order(coid("r")))
            closing = await call(nats_client, stack, "orders.check",
                                 order(coid("r"), side="SELL", position_effect="close"))
            cid = coid("r")
            submit = await call(nats_client, stack, "orders.submit", order(cid))
        async with start_compliance(sqlite_url, account_restrictions=f"{ACCOUNT}=closing_only:{yesterday}"):
            over = await call(nats_client, stack, "orders.check", order(coid("r")))
    finally:
        stack.sim("POST", f"/positions/{ACCOUNT}", [])
    assert opening["result"]["decision"] == "block", opening
    assert "ACCOUNT_RESTRICTED_CLOSING_ONLY" in [r["code"] for r in opening["result"]["reasons"]]
    assert closing["result"]["decision"] in ("allow", "warn"), closing
    assert submit["error"]["code"] == "COMPLIANCE_BLOCKED" and not stack.received(cid)
    assert over["result"]["decision"] in ("allow", "warn"), over


@pytest.mark.parametrize(("text", "problem"), [
    ("DU1=closing_only:tomorrow", "not a date"),
    ("DU1=frozen", "unknown restriction"),
    ("closing_only", "expected ACCOUNT=type"),
])
def test_a_malformed_restriction_setting_is_refused_naming_the_entry(text: str, problem: str) -> None:
    from pydantic import ValidationError

    from ibkr_compliance.settings import ComplianceSettings

    with pytest.raises(ValidationError, match=problem):
        ComplianceSettings(IBKR_COMPLIANCE_ACCOUNT_RESTRICTIONS=text)
    parsed = ComplianceSettings(IBKR_COMPLIANCE_ACCOUNT_RESTRICTIONS="du1=closing_only:2027-03-01+settled_cash_only")
    assert [r.type for r in parsed.restrictions["DU1"]] == ["closing_only", "settled_cash_only"]
