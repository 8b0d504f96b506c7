"""Buying-power arithmetic per strategy (RULES.md section 4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from ibkr_compliance.rules import (
    AccountState,
    MarketData,
    OrderLeg,
    OrderSpec,
    Position,
    Quote,
    RulesConfig,
    evaluate,
)

NOW = "2026-12-02T11:00:00-05:00"


def _leg(symbol: str, side: str) -> OrderLeg:
    return OrderLeg.model_validate({"symbol": symbol, "side": side, "position_effect": "open"})


def _combo(legs: list[OrderLeg], qty: str, limit: str) -> OrderSpec:
    return OrderSpec(qty=Decimal(qty), limit_price=Decimal(limit), legs=tuple(legs), position_effect="open")


def test_naked_put_uses_reg_t_formula_at_ibkr(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = ibkr_account(options_level=3, option_buying_power=Decimal("5000"))
    market = MarketData(underlying_prices={"": Decimal("100")})

    decision = evaluate(
        order("WMT261218P00090000", "sell", limit_price=Decimal("1.50"), position_effect="open"),
        account, config, at(NOW), market=market,
    )

    assert decision.computed["requirement"] == Decimal("1150.00")
    assert decision.computed["buying_power_reduction"] == Decimal("1001.00")


def test_cash_secured_put_at_alpaca_does_not_net_the_premium(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(options_level=1, option_buying_power=Decimal("17499.99"))

    decision = evaluate(
        order("AAPL261218P00175000", "sell", limit_price=Decimal("2.00"), position_effect="open"),
        account, config, at(NOW), regime="intraday_margin",
    )

    assert decision.computed["requirement"] == Decimal("17500.00")
    assert decision.decision == "block"
    assert "INSUFFICIENT_BUYING_POWER" in decision.reason_codes


def test_covered_call_needs_no_buying_power_when_shares_are_held(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(
        options_level=1, option_buying_power=Decimal("0"),
        positions=(Position(symbol="AAPL", qty=Decimal("200")),),
    )

    decision = evaluate(
        order("AAPL261218C00250000", "sell", qty="2", limit_price=Decimal("3.00"), position_effect="open"),
        account, config, at(NOW), regime="intraday_margin",
    )

    assert decision.decision == "allow"
    assert decision.computed["strategy"] == "covered_call"


def test_covered_call_with_too_few_shares_is_blocked(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(options_level=1, positions=(Position(symbol="AAPL", qty=Decimal("150")),))

    decision = evaluate(
        order("AAPL261218C00250000", "sell", qty="2", limit_price=Decimal("3.00"), position_effect="open"),
        account, config, at(NOW), regime="intraday_margin",
    )

    assert decision.decision == "block"
    assert "INSUFFICIENT_SHARES_FOR_COVERED_CALL" in decision.reason_codes


def test_debit_spread_requirement_is_the_net_debit_plus_fees(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, at: Callable[[str], datetime]
) -> None:
    spread = _combo([_leg("AAPL261218C00240000", "buy"), _leg("AAPL261218C00250000", "sell")], "2", "3.00")

    decision = evaluate(spread, ibkr_account(), config, at(NOW))

    assert decision.computed["strategy"] == "debit_spread"
    assert decision.computed["required_level"] == 2
    assert decision.computed["requirement"] == Decimal("602.60")


def test_short_iron_condor_requires_the_wider_side_less_the_credit(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, at: Callable[[str], datetime]
) -> None:
    condor = _combo(
        [
            _leg("SPY261218P00590000", "buy"),
            _leg("SPY261218P00600000", "sell"),
            _leg("SPY261218C00650000", "sell"),
            _leg("SPY261218C00655000", "buy"),
        ],
        "1",
        "2.00",
    )
    account = alpaca_account(options_level=3, option_buying_power=Decimal("800"))

    decision = evaluate(condor, account, config, at(NOW), regime="intraday_margin")

    assert decision.computed["requirement"] == Decimal("1000.00")
    assert decision.computed["buying_power_reduction"] == Decimal("800.00")
    assert decision.decision == "allow"


def test_market_sell_to_open_is_valued_at_the_bid(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = ibkr_account(options_level=4, option_buying_power=Decimal("5000"))
    market = MarketData(
        quotes={"WMT261218C00110000": Quote(symbol="WMT261218C00110000", bid=Decimal("2.00"), ask=Decimal("2.20"))},
        underlying_prices={"WMT": Decimal("100")},
    )

    decision = evaluate(
        order("WMT261218C00110000", "sell", order_type="market", position_effect="open"),
        account, config, at(NOW), market=market,
    )

    assert decision.computed["requirement"] == Decimal("1200.00")
    assert "MARKET_ORDER_PRICE_ESTIMATED" in decision.reason_codes


def test_stale_quote_blocks_a_market_buy(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    stale = Quote(bid=Decimal("3"), ask=Decimal("3.1"), age_s=Decimal("600"))
    market = MarketData(quotes={"AAPL261218C00250000": stale})

    decision = evaluate(order(order_type="market"), alpaca_account(), config, at(NOW), market=market)

    assert decision.decision == "block"
    assert "NO_QUOTE_FOR_MARKET_ORDER" in decision.reason_codes


def test_working_opening_orders_hold_buying_power(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(
        option_buying_power=Decimal("1000"),
        open_orders=({"symbol": "MSFT261218C00450000", "side": "buy", "qty": "2", "limit_price": "3.00",
                      "position_effect": "open"},),
    )

    decision = evaluate(order(limit_price=Decimal("5.00")), account, config, at(NOW), regime="intraday_margin")

    assert decision.computed["available_buying_power"] == Decimal("400.00")
    assert "INSUFFICIENT_BUYING_POWER" in decision.reason_codes


def _collar() -> OrderSpec:
    return _combo([_leg("WMT261218P00090000", "buy"), _leg("WMT261218C00110000", "sell")], "1", "0.10")


def test_collar_covered_by_shares_held_is_level_two_at_ibkr(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, at: Callable[[str], datetime],
) -> None:
    account = ibkr_account(options_level=2, option_buying_power=Decimal("500"),
                           positions=(Position(symbol="WMT", qty=Decimal("100")),))

    decision = evaluate(_collar(), account, config, at(NOW), regime="intraday_margin")

    assert decision.computed["strategy"] == "covered_combo" and decision.computed["required_level"] == 2
    assert decision.decision == "allow", decision.reason_codes


def test_collar_without_the_shares_is_an_uncovered_call(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, at: Callable[[str], datetime],
) -> None:
    account = ibkr_account(options_level=2, positions=(Position(symbol="WMT", qty=Decimal("99")),))

    decision = evaluate(_collar(), account, config, at(NOW), regime="intraday_margin")

    assert decision.decision == "block"
    assert "UNCOVERED_CALL_NOT_PERMITTED" in decision.reason_codes


def test_call_ratio_spread_covered_by_shares_costs_only_its_debit(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, at: Callable[[str], datetime],
) -> None:
    account = ibkr_account(options_level=2, option_buying_power=Decimal("10000"),
                           positions=(Position(symbol="WMT", qty=Decimal("100")),))
    ratio = OrderSpec(qty=Decimal("1"), limit_price=Decimal("0.50"), position_effect="open", legs=(
        OrderLeg.model_validate({"symbol": "WMT261218C00100000", "side": "buy", "ratio": 1}),
        OrderLeg.model_validate({"symbol": "WMT261218C00110000", "side": "sell", "ratio": 2}),
    ))

    decision = evaluate(ratio, account, config, at(NOW), regime="intraday_margin")

    assert decision.computed["strategy"] == "covered_combo" and decision.computed["required_level"] == 2
    assert decision.decision == "allow", decision.reason_codes
    assert decision.computed["requirement"] < Decimal("60")  # the 0.50 debit per share, plus fees


def test_a_held_sale_to_open_spends_the_buying_power_its_decision_computed(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    """Orders sent since the snapshot hold what their decisions required, not only opening buys' cost."""
    from ibkr_compliance.reservations import HOLD_SYMBOL, Reservations, reserve_of

    account = ibkr_account(options_level=3, option_buying_power=Decimal("1500"))
    market = MarketData(underlying_prices={"": Decimal("100")})
    put = order("WMT261218P00090000", "sell", limit_price=Decimal("1.50"), position_effect="open")
    first = evaluate(put, account, config, at(NOW), market=market)
    assert first.decision != "block" and first.computed["buying_power_reduction"] == Decimal("1001.00")

    reserve = reserve_of(put, first.computed)
    assert reserve is not None and reserve["buying_power"] == "1001.00" and reserve["side"] == "sell"
    holds = Reservations(timedelta(minutes=5))
    assert holds.hold(account.account_id, "put-1", reserve, at(NOW))
    held = holds.pending(account.account_id, at(NOW), shown=(), exclude="put-2")
    orders = tuple(o for h in held for o in h.orders)
    assert [o.symbol for o in orders] == ["WMT261218P00090000", HOLD_SYMBOL]

    second = evaluate(put, account.model_copy(update={"open_orders": account.open_orders + orders}), config,
                      at(NOW), market=market)
    assert second.decision == "block" and "INSUFFICIENT_BUYING_POWER" in second.reason_codes


def test_a_spread_is_held_by_its_requirement_and_an_opening_buy_by_its_cost_alone(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    from ibkr_compliance.reservations import reserve_of

    account = ibkr_account(options_level=3, option_buying_power=Decimal("5000"))
    spread = _combo([_leg("WMT261218P00090000", "sell"), _leg("WMT261218P00085000", "buy")], "1", "1.00")
    decided = evaluate(spread, account, config, at(NOW), market=MarketData(underlying_prices={"": Decimal("100")}))
    reduction = decided.computed["buying_power_reduction"]
    assert reduction > 0
    assert reserve_of(spread, decided.computed) == {"buying_power": str(reduction)}

    call = order("WMT261218C00100000", "buy", limit_price=Decimal("2.00"), position_effect="open")
    bought = evaluate(call, account, config, at(NOW), market=MarketData(underlying_prices={"": Decimal("100")}))
    assert "buying_power" not in (reserve_of(call, bought.computed) or {})
