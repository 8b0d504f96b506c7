"""Mapping tables and parsing, over IBKR's recorded responses (the copies cpsim keeps, `cpsim.payloads`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from cpsim.payloads import envelope
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge import mapping, parsing, parsing_contracts, parsing_orders

NOW = datetime(2026, 4, 1, tzinfo=UTC)


def body(name: str) -> Any:
    response = envelope(name)["Response"]
    return response.get("Body", response.get("JsonBody"))


@pytest.mark.parametrize(("raw", "expected"), [
    ("168.42", Decimal("168.42")), ("1,300", Decimal(1300)), ("2.4K", Decimal(2400)), ("1.00M", Decimal(1000000)),
    ("0.54%", Decimal("0.54")), (0.1, Decimal("0.1")), (654.51, Decimal("654.51")), ("", None), (None, None),
    ("n/a", None), ("1,005,254 USD", Decimal(1005254)), (True, None), (float("nan"), None), ("-3.50", Decimal("-3.5")),
])
def test_to_decimal(raw: Any, expected: Decimal | None) -> None:
    assert mapping.to_decimal(raw) == expected


@pytest.mark.parametrize(("raw", "price", "close", "halted"), [
    ("C123.45", Decimal("123.45"), True, False), ("H99", Decimal(99), False, True),
    ("168.42", Decimal("168.42"), False, False),
])
def test_last_price_prefixes(raw: str, price: Decimal, close: bool, halted: bool) -> None:
    assert mapping.price_flags(raw) == (price, close, halted)


@pytest.mark.parametrize(("raw", "expected"), [
    ("PreSubmitted", "pre_submitted"), ("Pending Submit", "pending_submit"), ("PendingSubmit", "pending_submit"),
    ("Filled", "filled"), ("Cancelled", "cancelled"), ("Inactive", "inactive"), ("WarnState", "warn_state"),
    ("Failed", "failed"), ("PendingCancel", "pending_cancel"), ("Submitted", "submitted"), ("weird", "unknown"),
])
def test_order_status(raw: str, expected: str) -> None:
    assert mapping.order_status(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [("B", "BUY"), ("S", "SELL"), ("BOT", "BUY"), ("SLD", "SELL"),
                                               ("Buy", "BUY"), ("SELL", "SELL"), ("", None)])
def test_side(raw: str, expected: str | None) -> None:
    assert mapping.side(raw) == expected


def test_recorded_live_orders_and_status() -> None:
    [order] = parsing_orders.live_orders(body("Orders/GET-live-orders.json"))
    assert order.order_id == "473740665" and order.status == "filled" and order.side == "BUY"
    assert order.avg_price == Decimal("647.09") and order.price is None and order.order_type == "MKT"
    assert order.last_execution_at is not None and order.last_execution_at.tzinfo is not None
    assert parsing_orders.live_orders(body("Orders/GET-live-orders-empty.json")) == []
    status = parsing_orders.order_status_result("1", body("Orders/GET-order-status.json"))
    assert status.status != "unknown" and status.order_id


def test_recorded_place_shapes() -> None:
    placed = parsing_orders.place_result(body("Orders/POST-place-order-submitted.json"), "c1")
    assert placed.status == "submitted" and placed.order_id == "123456789" and placed.order_status == "pre_submitted"
    asked = parsing_orders.place_result(body("Orders/POST-place-order-confirmation.json"), "c1")
    assert asked.status == "confirmation_required" and asked.confirmation is not None
    assert asked.confirmation.reply_id == "test-reply-id-001" and asked.confirmation.message_ids == ["o354"]
    assert "market data" in asked.confirmation.messages[0]
    replied = parsing_orders.place_result(body("Orders/POST-reply-submitted.json"), "c1")
    assert replied.status == "submitted" and replied.order_id
    text = "Order couldn't be submitted: Local order ID=c1 is already registered."
    rejected = parsing_orders.place_result({"error": text}, "c1")
    assert rejected.status == "rejected" and "Local order ID" in (rejected.message or "")
    bracket = parsing_orders.place_result([{"order_id": "-1", "order_status": "Failed", "text": "size"},
                                           {"order_id": "1760268467", "order_status": "Inactive"}], "c1")
    assert bracket.status == "rejected" and len(bracket.orders) == 2
    prompt = parsing_orders.place_result(
        {"orderId": 1, "reqId": "2", "text": "Use algo?", "options": ["a"], "prompt": True}, "c1")
    assert prompt.status == "rejected" and prompt.prompt is not None


def test_recorded_trades_positions_summary() -> None:
    [trade] = parsing_orders.trades(body("Orders/GET-trades.json"))
    assert trade.side == "BUY" and trade.price == Decimal("647.09") and trade.quantity == Decimal("1.0")
    assert parsing_orders.trades(body("Orders/GET-trades-empty.json")) == []
    positions = parsing.positions("U1234567", body("Portfolio/GET-portfolio-positions-page0.json"))
    assert positions and all(isinstance(p.quantity, Decimal) for p in positions)
    summary = parsing.account_summary("U1234567", body("Portfolio/GET-portfolio-summary.json"))
    assert summary.net_liquidation is not None and summary.net_liquidation > 0
    assert "accountcode" not in summary.values
    ledger = parsing.ledger("U1234567", body("Portfolio/GET-portfolio-ledger.json"))
    assert any(e.currency == "BASE" for e in ledger.entries)
    pnl = parsing.pnl(body("Portfolio/GET-iserver-account-pnl-partitioned.json"))
    assert pnl.rows or pnl.complete is False
    accounts = parsing.portfolio_accounts(body("Portfolio/GET-portfolio-accounts.json"))
    assert accounts.accounts[0].account_id == "U1234567"
    assert parsing.accounts_list(body("Accounts/GET-iserver-accounts.json")).accounts == ["U1234567"]


def test_recorded_contracts_and_snapshot() -> None:
    found = parsing_contracts.search(body("Contracts/GET-secdef-search.json"))
    assert found[0].conid == 756733 and found[0].option_months == ["APR26", "MAY26", "JUN26"]
    calls, puts = parsing_contracts.strikes(body("Contracts/GET-secdef-strikes.json"))
    assert calls[0] == Decimal("50.0") and len(puts) == len(calls)
    info = parsing_contracts.contract_info(1, body("Contracts/GET-contract-info.json"))
    assert info.conid > 1 and info.symbol
    assert parsing_contracts.secdef(body("Contracts/GET-trsrv-secdef.json"))
    [snap] = [parsing_contracts.snapshot(x)[0] for x in body("MarketData/GET-snapshot.json")]
    assert snap is not None and snap.last == Decimal("655.89") and snap.volume == Decimal(50000000)
    assert snap.change_pct == Decimal("0.54") and snap.fields["bid"] == "655.88"
    assert parsing_contracts.snapshot({"conid": 1, "conidEx": "1"}) [1] is False


def test_session_bodies_never_carry_secrets() -> None:
    tickle = parsing.tickle(body("Session/POST-tickle.json"), NOW)
    dumped = tickle.model_dump_json()
    raw = body("Session/POST-tickle.json")
    assert raw.get("session") is None or raw["session"] not in dumped
    status = parsing.session_status(body("Session/GET-auth-status.json"))
    assert status.authenticated is True


def test_unreadable_positions_are_counted_not_silently_dropped() -> None:
    page = body("Portfolio/GET-portfolio-positions-page0.json")
    broken = [*page, {"acctId": "U1234567", "conid": None, "position": "??", "contractDesc": "MYSTERY"}]
    read, received, unreadable = parsing.positions_read("U1234567", broken)
    assert received == len(page) + 1
    assert unreadable == 1
    assert len(read) == len(page)


def test_option_position_keeps_its_underlying_symbol() -> None:
    raw = {"acctId": "DU1", "conid": 1, "position": 2, "assetClass": "OPT", "putOrCall": "C", "strike": "440",
           "multiplier": 100, "undConid": 756733, "undSym": "SPY", "expiry": "20250117",
           "contractDesc": "SPY    JAN2025 440 C [SPY   250117C00440000 100]"}
    pos = parsing.position("DU1", raw)
    assert pos is not None and pos.underlying_symbol == "SPY" and pos.underlying_conid == 756733


def test_text_summary_values_are_kept_apart_from_numbers() -> None:
    raw = {"netliquidation": {"amount": 30000.0, "currency": "USD", "isNull": False, "value": None},
           "daytradingstatus-s": {"amount": 0.0, "currency": None, "isNull": False, "value": "Pattern Day Trader"}}
    summary = parsing.account_summary("DU1", raw)
    assert summary.texts == {"daytradingstatus-s": "Pattern Day Trader"}
    assert summary.net_liquidation == Decimal("30000.0")


def test_sso_validate_gives_the_login_time_and_environment_without_the_username() -> None:
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    body = {"USER_NAME": "paperuser1", "RESULT": True, "AUTH_TIME": 1763953200000, "EXPIRES": 540000, "LOGIN_TYPE": 2}

    result = parsing.validate(body, now)

    assert result.login_at == datetime(2025, 11, 24, 3, 0, tzinfo=UTC)
    assert result.environment == "paper" and result.valid and result.expires_ms == 540000
    assert "paperuser1" not in result.model_dump_json()


def test_a_full_positions_page_says_there_may_be_more() -> None:
    row = {"conid": 1, "position": 1, "assetClass": "STK"}
    full = parsing.positions_page("DU1", 3, [row] * parsing.POSITIONS_PAGE_SIZE)
    assert full.has_more and full.page == 3 and full.received == parsing.POSITIONS_PAGE_SIZE
    short = parsing.positions_page("DU1", 4, [row, {"conid": 2}])
    assert not short.has_more and short.received == 2 and short.unreadable == 1 and len(short.positions) == 1


def test_live_orders_still_filling_only_when_empty_and_not_a_snapshot() -> None:
    assert parsing_orders.live_orders_answer({"orders": [], "snapshot": False}).still_filling
    assert not parsing_orders.live_orders_answer({"orders": [], "snapshot": True}).still_filling
    filled = parsing_orders.live_orders_answer({"orders": [{"orderId": 7, "status": "Submitted"}], "snapshot": False})
    assert not filled.still_filling and [o.order_id for o in filled.orders] == ["7"]


@pytest.mark.parametrize(("text", "code"), [("OrderID 1 doesn't exist", ErrorCode.NOT_FOUND),
                                            ("order is locked", ErrorCode.CONFLICT)])
def test_a_refused_cancel_is_a_typed_error(text: str, code: ErrorCode) -> None:
    with pytest.raises(ServiceError) as caught:
        parsing_orders.cancel_result("1", {"error": text})
    assert caught.value.code == code and text in caught.value.message
    done = parsing_orders.cancel_result("1", {"msg": "Request was submitted", "order_id": 1, "conid": -1})
    assert done.order_id == "1" and done.message == "Request was submitted" and done.conid is None


def test_snapshots_tell_data_from_the_preflight_answer() -> None:
    answer = parsing_contracts.snapshots([{"conid": 1, "31": "C200.5", "84": "199"}, {"conid": 2, "6509": "RpB"},
                                          {"no": "conid"}, "junk"])
    first, second = answer.snapshots
    assert parsing_contracts.has_data(first) and first.last == Decimal("200.5") and first.last_is_close
    assert not parsing_contracts.has_data(second) and not answer.complete
