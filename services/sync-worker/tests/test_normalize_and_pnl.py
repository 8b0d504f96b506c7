"""Normalising bridge replies, content hashes and the unrealized P&L check."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ibkr_sync_worker.normalize import (
    BadRecord,
    dec,
    order_from_live,
    order_from_trades,
    position_from_bridge,
    position_from_row,
)
from ibkr_sync_worker.normalize_account import account_from_summary
from ibkr_sync_worker.pnl import check_pnl, expected_pnl

from .sync_factories import ACCT, live_order, option_position, stock_position, summary, trade

TOL_ABS, TOL_REL = Decimal("1.00"), Decimal("0.005")


def test_numbers_are_rounded_to_the_stored_scale_and_normalised():
    assert dec(454.44000245) == Decimal("454.44000245")
    assert dec("1,300.5") == Decimal("1300.5")
    assert dec(Decimal("100.00000000")) == dec(100)
    assert format(dec(Decimal("-0.000")), "f") == "0"


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity"])
def test_unreadable_numbers_are_bad_records(bad):
    with pytest.raises(BadRecord):
        dec(bad)


def test_option_position_keeps_contract_terms_and_underlying():
    record = position_from_bridge(option_position(), ACCT)
    assert record.expiry == date(2027, 1, 15)
    assert (record.strike, record.right, record.multiplier) == (Decimal(440), "C", Decimal(100))
    assert record.underlying_conid == 756733 and record.underlying_symbol == "SPY"


def test_stock_position_drops_the_zero_multiplier_and_option_terms():
    record = position_from_bridge(stock_position(strike=Decimal(0)), ACCT)
    assert record.multiplier is None and record.strike is None and record.expiry is None


def test_the_hash_survives_a_database_round_trip():
    record = position_from_bridge(stock_position(market_price=Decimal("170.12345678901")), ACCT)
    from_db = position_from_row({**record.columns(), "market_price": Decimal("170.12345679")})
    assert from_db.content_hash() == record.content_hash()


def test_a_price_move_changes_the_hash_but_not_the_business_part():
    before = position_from_bridge(stock_position(price="170"), ACCT)
    after = position_from_bridge(stock_position(price="171"), ACCT)
    assert before.content_hash() != after.content_hash()
    assert before.business() == after.business()


def test_a_quantity_change_changes_the_business_part():
    before = position_from_bridge(stock_position(quantity="100"), ACCT)
    after = position_from_bridge(stock_position(quantity="150"), ACCT)
    assert before.business() != after.business()


def test_live_limit_order_maps_type_and_price():
    record = order_from_live(live_order(), ACCT)
    assert (record.order_type, record.limit_price, record.stop_price) == ("LMT", Decimal(150), None)


def test_live_stop_order_price_is_the_stop_price():
    record = order_from_live(live_order(order_type="Stop", price=Decimal(140)), ACCT)
    assert (record.order_type, record.limit_price, record.stop_price) == ("STP", None, Decimal(140))


def test_live_stop_order_reads_its_stop_from_aux_price_when_the_list_gives_one():
    record = order_from_live(live_order(order_type="STOP", price=None, aux_price=Decimal(140)), ACCT)
    assert (record.order_type, record.limit_price, record.stop_price) == ("STP", None, Decimal(140))


def test_live_stop_limit_order_has_its_limit_in_price_and_its_stop_in_aux_price():
    record = order_from_live(live_order(order_type="Stop Limit", price=Decimal(139), aux_price=Decimal(140)), ACCT)
    assert (record.order_type, record.limit_price, record.stop_price) == ("STP_LMT", Decimal(139), Decimal(140))


def test_order_known_only_from_executions_is_filled_with_average_price():
    record = order_from_trades("77", ACCT, [trade("e1", "77", "10", "100"), trade("e2", "77", "30", "104")])
    assert record.status == "filled"
    assert (record.quantity, record.filled_quantity, record.avg_fill_price) == (Decimal(40), Decimal(40), Decimal(103))
    assert [f["execution_id"] for f in record.fills] == ["e1", "e2"]


def test_account_summary_reads_day_trades_for_the_next_four_days():
    record = account_from_summary(summary(dtr=1, **{"daytradesremainingt+3": Decimal(2)}))
    assert record.day_trades_remaining == 1
    assert (record.day_trades_remaining_t1, record.day_trades_remaining_t3, record.day_trades_remaining_t4) == (1, 2, 3)
    assert record.cash == Decimal(100000) and record.pdt_flag is None


def test_consistent_broker_pnl_is_kept():
    record = position_from_bridge(stock_position(unrealized_pnl=Decimal("2000.40")), ACCT)
    checked, mismatch = check_pnl(record, TOL_ABS, TOL_REL)
    assert mismatch is None and checked.unrealized_pnl == Decimal("2000.40")


def test_inconsistent_broker_pnl_is_replaced_and_reported():
    record = position_from_bridge(stock_position(unrealized_pnl=Decimal("-5000")), ACCT)
    checked, mismatch = check_pnl(record, TOL_ABS, TOL_REL)
    assert checked.unrealized_pnl == Decimal(2000)
    assert mismatch is not None and mismatch.broker == Decimal(-5000)


def test_option_pnl_uses_the_multiplier():
    record = position_from_bridge(option_position(unrealized_pnl=None), ACCT)
    assert expected_pnl(record) == Decimal(150)
    checked, mismatch = check_pnl(record, TOL_ABS, TOL_REL)
    assert mismatch is None and checked.unrealized_pnl == Decimal(150)


def test_short_position_pnl_gains_when_price_falls():
    record = position_from_bridge(stock_position(quantity="-10", avg="100", price="90"), ACCT)
    assert expected_pnl(record) == Decimal(100)


@pytest.mark.parametrize(("status", "flagged"), [
    ("Pattern Day Trader", True), ("PDT", True), ("Non-Pattern Day Trader", False), ("Not a PDT", False),
    ("Normal", False), (None, None),
])
def test_pdt_flag_is_read_from_the_day_trading_status_text(status, flagged):
    s = summary()
    if status is not None:
        s = s.model_copy(update={"texts": {"daytradingstatus-s": status}})
    assert account_from_summary(s).pdt_flag is flagged


def test_order_status_brings_a_vanished_order_up_to_date_and_keeps_its_fills():
    from datetime import UTC, datetime

    from ibkr_common.messages import bridge
    from ibkr_sync_worker.normalize import OrderRecord, order_from_status

    previous = OrderRecord(account_id=ACCT, order_id="42", status="submitted", quantity=Decimal("10"),
                           filled_quantity=Decimal("4"), remaining_quantity=Decimal("6"),
                           fills=({"execution_id": "e1", "quantity": "4"},),
                           last_execution_at=datetime(2026, 11, 24, 15, tzinfo=UTC))
    status = bridge.OrderStatusResult(order_id="42", status="filled", quantity=Decimal("10"),
                                      filled_quantity=Decimal("10"), avg_price=Decimal("101.5"))
    updated = order_from_status(status, previous)
    assert updated.status == "filled" and updated.remaining_quantity == 0
    assert updated.avg_fill_price == Decimal("101.5")
    assert updated.fills == previous.fills
