"""The pure diff: opened/changed/closed positions, order status events, account updates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ibkr_sync_worker.diff import Stored, diff_account, diff_orders, diff_positions
from ibkr_sync_worker.normalize import (
    fill_from_trade,
    order_from_live,
    order_from_trades,
    position_from_bridge,
    with_fills,
)
from ibkr_sync_worker.normalize_account import account_from_summary

from .sync_factories import ACCT, live_order, stock_position, summary, trade

NOW = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def pos(**kw):
    return position_from_bridge(stock_position(**kw), ACCT)


def stored(records, key=lambda r: r.conid):
    return {key(r): Stored(i, r, r.content_hash()) for i, r in enumerate(records)}


def test_new_position_is_opened():
    plan = diff_positions({}, [pos()], complete=True)
    assert [e.type for e in plan.events] == ["positions.opened"] and len(plan.inserts) == 1


def test_identical_snapshot_writes_nothing_and_announces_nothing():
    plan = diff_positions(stored([pos(), pos(conid=1, symbol="X")]), [pos(), pos(conid=1, symbol="X")], True)
    assert plan.writes == 0 and plan.events == []


def test_price_move_updates_the_row_without_an_event():
    plan = diff_positions(stored([pos(price="170")]), [pos(price="171")], True)
    assert len(plan.updates) == 1 and plan.events == []


def test_quantity_change_is_announced_with_the_previous_quantity():
    plan = diff_positions(stored([pos(quantity="100")]), [pos(quantity="150")], True)
    assert [e.type for e in plan.events] == ["positions.changed"]
    assert plan.events[0].payload["previous"]["quantity"] == Decimal(100)


def test_missing_position_is_closed_after_a_complete_read():
    plan = diff_positions(stored([pos(), pos(conid=1, symbol="X")]), [pos()], complete=True)
    assert [e.type for e in plan.events] == ["positions.closed"] and len(plan.closes) == 1


def test_missing_position_is_kept_when_the_read_was_incomplete():
    plan = diff_positions(stored([pos(), pos(conid=1, symbol="X")]), [pos()], complete=False)
    assert plan.closes == [] and plan.events == [] and plan.held == 2


def test_zero_quantity_counts_as_closed():
    plan = diff_positions(stored([pos()]), [pos(quantity="0")], complete=True)
    assert [e.type for e in plan.events] == ["positions.closed"]


def test_new_external_order_is_announced():
    order = order_from_live(live_order("9"), ACCT)
    plan = diff_orders({}, {"9": (order, True)}, NOW)
    assert [e.type for e in plan.events] == ["orders.status_changed"]
    assert plan.inserts[0][1][0]["status"] == "submitted"


def test_order_status_moves_give_the_matching_events():
    before = order_from_live(live_order("1", "submitted"), ACCT)
    cases = {"filled": "orders.filled", "cancelled": "orders.cancelled", "inactive": "orders.rejected",
             "pre_submitted": "orders.status_changed"}
    for status, expected in cases.items():
        after = order_from_live(live_order("1", status), ACCT)
        plan = diff_orders({"1": Stored(5, before, before.content_hash(), {"status_history": []})},
                           {"1": (after, True)}, NOW)
        assert [e.type for e in plan.events] == [expected]
        assert plan.updates[0][2][-1]["status"] == status


def test_unchanged_order_writes_nothing():
    order = order_from_live(live_order("1"), ACCT)
    plan = diff_orders({"1": Stored(5, order, order.content_hash())}, {"1": (order, True)}, NOW)
    assert plan.writes == 0 and plan.events == []


def test_partial_fill_is_a_status_change_with_the_new_fills():
    before = order_from_live(live_order("1", "submitted", "0"), ACCT)
    after = with_fills(order_from_live(live_order("1", "submitted", "4"), ACCT),
                       (fill_from_trade(trade("e1", "1", "4")),))
    plan = diff_orders({"1": Stored(5, before, before.content_hash())}, {"1": (after, True)}, NOW)
    assert [e.type for e in plan.events] == ["orders.status_changed"]
    assert plan.events[0].payload["new_fills"][0]["execution_id"] == "e1" and plan.new_fills == 1


def test_executions_of_a_known_order_fill_it_without_losing_older_fills():
    before = with_fills(order_from_live(live_order("1", "submitted", "4"), ACCT),
                        (fill_from_trade(trade("e1", "1", "4")),))
    later = order_from_trades("1", ACCT, [trade("e2", "1", "6")])
    plan = diff_orders({"1": Stored(5, before, before.content_hash())}, {"1": (later, False)}, NOW)
    merged = plan.updates[0][1]
    assert merged.status == "filled" and merged.filled_quantity == Decimal(10)
    assert [f["execution_id"] for f in merged.fills] == ["e1", "e2"]
    assert [e.type for e in plan.events] == ["orders.filled"]


def test_first_account_summary_is_announced():
    plan = diff_account(None, account_from_summary(summary()))
    assert plan.insert and plan.event is not None


def test_market_driven_account_figures_update_silently():
    before = account_from_summary(summary(net_liq="117000"))
    after = account_from_summary(summary(net_liq="118000"))
    plan = diff_account(Stored(None, before, before.content_hash()), after)
    assert plan.write is not None and plan.event is None


def test_day_trades_change_is_announced_by_name():
    before = account_from_summary(summary(dtr=3))
    after = account_from_summary(summary(dtr=2))
    plan = diff_account(Stored(None, before, before.content_hash()), after)
    assert plan.event is not None and "day_trades_remaining" in plan.event.payload["changed"]


def test_unreadable_figures_keep_their_last_value_and_are_reported():
    before = pos()
    garbled = pos(market_price=None, market_value=None, unrealized_pnl=None, avg_cost=None)
    plan = diff_positions(stored([before]), [garbled], True)
    assert plan.writes == 0 and plan.events == []  # nothing stored over the last good figures
    assert sorted(plan.figures_lost[before.conid]) == ["avg_cost", "market_price", "market_value", "unrealized_pnl"]


def test_after_a_size_change_only_the_price_is_kept_and_value_stays_unknown():
    plan = diff_positions(stored([pos(quantity="100")]), [pos(quantity="150", market_price=None,
                                                               market_value=None)], True)
    [(_, written)] = plan.updates
    assert written.quantity == 150 and written.market_price == 170 and written.market_value is None
    assert [e.type for e in plan.events] == ["positions.changed"]
    assert sorted(plan.figures_lost[265598]) == ["market_price", "market_value"]
