"""Day-trade counting sequences of RULES.md 1.1 and 1.2, both methods."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import pytest

from ibkr_compliance.rules import AccountState, DayTradeRecord, Execution, OrderSpec, Position, RulesConfig, evaluate
from ibkr_compliance.rules.pdt import SeriesBook


def _run(method: str, overnight: int, steps: list[tuple[str, int]]) -> list[tuple[str, int]]:
    book = SeriesBook(method=method, overnight=Decimal(overnight))  # type: ignore[arg-type]
    return [book.apply(side, Decimal(qty)) for side, qty in steps]  # type: ignore[arg-type]


def _total(results: list[tuple[str, int]]) -> int:
    return sum(new for _, new in results)


@pytest.mark.parametrize(
    ("method", "expected"), [("direction_change", 1), ("per_opening_transaction", 2)]
)
def test_two_buys_then_one_sale_counts_by_method(method: str, expected: int) -> None:
    results = _run(method, 0, [("buy", 250), ("buy", 250), ("sell", 500)])

    assert _total(results) == expected


def test_per_opening_transaction_counts_both_lots_when_the_sale_touches_both() -> None:
    results = _run("per_opening_transaction", 0, [("buy", 50), ("buy", 50), ("sell", 51)])

    assert _total(results) == 2


@pytest.mark.parametrize("method", ["direction_change", "per_opening_transaction"])
def test_buy_sell_buy_sell_is_two_day_trades(method: str) -> None:
    results = _run(method, 0, [("buy", 100), ("sell", 100), ("buy", 100), ("sell", 100)])

    assert _total(results) == 2


@pytest.mark.parametrize("method", ["direction_change", "per_opening_transaction"])
def test_one_purchase_then_several_sales_is_one_day_trade_then_continuations(method: str) -> None:
    results = _run(method, 0, [("buy", 100), ("sell", 40), ("sell", 60)])

    assert results[1] == ("day_trade", 1)
    assert results[2] == ("continuation", 0)


@pytest.mark.parametrize("method", ["direction_change", "per_opening_transaction"])
def test_selling_the_overnight_lot_before_any_purchase_is_not_a_day_trade(method: str) -> None:
    results = _run(method, 50, [("sell", 50)])

    assert results == [("not_day_trade", 0)]


@pytest.mark.parametrize("method", ["direction_change", "per_opening_transaction"])
def test_no_fifo_sale_after_adding_today_matches_todays_purchase(method: str) -> None:
    results = _run(method, 50, [("buy", 25), ("sell", 25)])

    assert results[1] == ("day_trade", 1)


@pytest.mark.parametrize("method", ["direction_change", "per_opening_transaction"])
def test_liquidating_overnight_then_rebuying_is_a_new_opening(method: str) -> None:
    results = _run(method, 50, [("sell", 50), ("buy", 50)])

    assert results == [("not_day_trade", 0), ("open", 0)]


@pytest.mark.parametrize("method", ["direction_change", "per_opening_transaction"])
def test_short_then_cover_same_day_is_a_day_trade(method: str) -> None:
    results = _run(method, 0, [("sell", 1), ("buy", 1)])

    assert results[1] == ("day_trade", 1)


@pytest.mark.parametrize("method", ["direction_change", "per_opening_transaction"])
def test_short_held_overnight_bought_back_first_is_not_a_day_trade(method: str) -> None:
    results = _run(method, -2, [("buy", 2)])

    assert results == [("not_day_trade", 0)]


def test_earlier_sessions_are_replayed_from_executions_when_the_broker_lists_none(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    symbol = "AAPL260515C00200000"
    earlier = tuple(
        Execution(time=at(f"2026-04-{d}T{hh}:00:00-04:00"), symbol=symbol, side=side, qty=Decimal("1"))
        for d in (17, 20, 21) for hh, side in (("10", "buy"), ("11", "sell"))
    )
    today = (Execution(time=at("2026-04-22T09:45:00-04:00"), symbol=symbol, side="buy", qty=Decimal("2")),)
    held = (Position(symbol=symbol, qty=Decimal("2")),)
    close = order(symbol, "sell", qty="2", limit_price=Decimal("3.4"), position_effect="close")
    listed = alpaca_account(day_trades_in_window=tuple(
        DayTradeRecord(date=date(2026, 4, d), symbol=symbol, count=1) for d in (17, 20, 21)),
        today_executions=today, positions=held)
    replayed = alpaca_account(day_trades_in_window=None, today_executions=earlier + today, positions=held)
    now = at("2026-04-22T14:05:00-04:00")

    from_list = evaluate(close, listed, config, now, regime="legacy_pdt")
    from_fills = evaluate(close, replayed, config, now, regime="legacy_pdt")

    assert from_fills.computed["local_day_trades_used"] == 3
    assert from_fills.decision == from_list.decision and set(from_list.reason_codes) <= set(from_fills.reason_codes)
    assert "PDT_4TH_DAY_TRADE" in from_fills.reason_codes
