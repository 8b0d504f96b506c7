"""Gates, restrictions, levels and day-trade policies through ``evaluate``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import pytest

from ibkr_compliance.rules import (
    AccountState,
    BrokerSession,
    DayTradeRecord,
    Execution,
    OrderSpec,
    Position,
    Restriction,
    RulesConfig,
    ServiceFlags,
    evaluate,
)

LEGACY_NOW = "2026-04-22T14:05:00-04:00"
SYMBOL = "AAPL260515C00200000"


def _three_used() -> tuple[DayTradeRecord, ...]:
    return tuple(DayTradeRecord(date=date(2026, 4, d), symbol="SPY", count=1) for d in (17, 20, 21))


def _bought_today(at: Callable[[str], datetime]) -> dict[str, object]:
    return {
        "today_executions": (
            Execution(time=at("2026-04-22T09:45:00-04:00"), symbol=SYMBOL, side="buy", qty=Decimal("2"),
                      price=Decimal("3.1")),
        ),
        "positions": (Position(symbol=SYMBOL, qty=Decimal("2")),),
    }


def _close(order: Callable[..., OrderSpec]) -> OrderSpec:
    return order(SYMBOL, "sell", qty="2", limit_price=Decimal("3.4"), position_effect="close")


def test_fourth_day_trade_is_only_warned_under_the_warn_close_policy(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(day_trades_in_window=_three_used(), **_bought_today(at))
    relaxed = config.model_copy(update={"pdt_close_policy": "warn"})

    decision = evaluate(_close(order), account, relaxed, at(LEGACY_NOW), regime="legacy_pdt")

    assert decision.decision == "warn"
    assert "PDT_4TH_DAY_TRADE" in decision.reason_codes


def test_six_percent_exemption_turns_the_block_into_a_warning_when_enabled(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(day_trades_in_window=_three_used(), total_trades_in_window=99, **_bought_today(at))
    enabled = config.model_copy(update={"apply_six_percent_exemption": True})

    decision = evaluate(_close(order), account, enabled, at(LEGACY_NOW), regime="legacy_pdt")

    assert decision.decision == "warn"
    assert "PDT_SIX_PERCENT_EXEMPTION_APPLIED" in decision.reason_codes


def test_six_percent_test_is_ignored_by_default(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(day_trades_in_window=_three_used(), total_trades_in_window=99, **_bought_today(at))

    decision = evaluate(_close(order), account, config, at(LEGACY_NOW), regime="legacy_pdt")

    assert decision.decision == "block"


def test_exactly_25000_meets_the_minimum(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(
        equity=Decimal("25000.00"), previous_equity=Decimal("25000.00"), day_trades_in_window=_three_used(),
        **_bought_today(at),
    )

    decision = evaluate(_close(order), account, config, at(LEGACY_NOW), regime="legacy_pdt")

    assert decision.decision == "allow"
    assert "PDT_EXEMPT_MIN_EQUITY" in decision.reason_codes


def test_ibkr_counter_overrides_a_lower_local_count(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = ibkr_account(equity=Decimal("20000"), previous_equity=Decimal("20000"), daytrades_remaining=1,
                           **_bought_today(at))

    decision = evaluate(_close(order), account, config, at(LEGACY_NOW), regime="legacy_pdt")

    assert decision.computed["day_trades_used_before"] == 2
    assert "PDT_LAST_DAY_TRADE" in decision.reason_codes


def test_closing_is_allowed_in_the_intraday_margin_regime(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = alpaca_account(day_trades_in_window=_three_used(), **_bought_today(at))

    decision = evaluate(_close(order), account, config, at(LEGACY_NOW), regime="intraday_margin")

    assert decision.decision == "allow"
    assert "PDT_NOT_APPLICABLE_INTRADAY_MARGIN_REGIME" in decision.reason_codes


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"environment": "live", "account_id": "U7654321", "live_trading_enabled": False}, "LIVE_TRADING_NOT_ENABLED"),
        ({"environment": "live"}, "ENVIRONMENT_MISMATCH"),
        ({"session": BrokerSession(authenticated=False)}, "BROKER_SESSION_NOT_AUTHENTICATED"),
        ({"session": BrokerSession(competing=True)}, "BROKER_SESSION_NOT_AUTHENTICATED"),
        ({"snapshot_age_s": Decimal("61")}, "STALE_ACCOUNT_DATA"),
        ({"restrictions": (Restriction(type="imd_90_day_freeze"),)}, "ACCOUNT_RESTRICTED_CLOSING_ONLY"),
        ({"options_level": 0}, "OPTIONS_NOT_ENABLED"),
    ],
)
def test_gates_block_opening_orders(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime], overrides: dict[str, object], code: str,
) -> None:
    decision = evaluate(order(limit_price=Decimal("3")), ibkr_account(**overrides), config,
                        at("2026-12-02T11:00:00-05:00"))

    assert decision.decision == "block"
    assert code in decision.reason_codes


def test_a_connection_not_enabled_blocks_closing_orders_too(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    flags = ServiceFlags(connection_enabled=False)
    closing = order(side="sell", position_effect="close", limit_price=Decimal("3"))
    decision = evaluate(closing, ibkr_account(), config, at("2026-12-02T11:00:00-05:00"), flags=flags)
    enabled = evaluate(closing, ibkr_account(), config, at("2026-12-02T11:00:00-05:00"))

    assert decision.decision == "block"
    reason = next(r for r in decision.reasons if r.code == "CONNECTION_NOT_ENABLED")
    assert reason.severity == "block" and "acknowledge its disclosures" in reason.message
    assert "CONNECTION_NOT_ENABLED" not in enabled.reason_codes


def test_snapshot_exactly_at_the_limit_is_fresh(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    decision = evaluate(order(limit_price=Decimal("3")), ibkr_account(snapshot_age_s=Decimal("60")), config,
                        at("2026-12-02T11:00:00-05:00"))

    assert decision.decision == "allow"


def test_closing_order_is_allowed_at_any_options_level(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = ibkr_account(options_level=0, positions=(Position(symbol="AAPL261218C00250000", qty=Decimal("1")),))

    decision = evaluate(order(side="sell", limit_price=Decimal("3")), account, config, at("2026-12-02T11:00:00-05:00"))

    assert decision.decision == "allow"


def test_cash_account_sale_of_a_purchase_made_with_same_day_proceeds_risks_a_good_faith_violation(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    executions = (
        Execution(time=at("2026-12-02T09:40:00-05:00"), symbol="MSFT261218C00450000", side="sell",
                  qty=Decimal("1"), price=Decimal("6")),
        Execution(time=at("2026-12-02T09:50:00-05:00"), symbol="AAPL261218C00250000", side="buy",
                  qty=Decimal("1"), price=Decimal("5")),
    )
    account = ibkr_account(account_type="cash", settled_cash=Decimal("100"), today_executions=executions,
                           positions=(Position(symbol="AAPL261218C00250000", qty=Decimal("1")),))

    decision = evaluate(order(side="sell", limit_price=Decimal("5.5")), account, config,
                        at("2026-12-02T11:00:00-05:00"))

    assert decision.decision == "warn"
    assert "GOOD_FAITH_VIOLATION_RISK" in decision.reason_codes


def test_ibkr_level_three_cannot_sell_a_naked_call(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    decision = evaluate(order(side="sell", limit_price=Decimal("3"), position_effect="open"),
                        ibkr_account(options_level=3), config, at("2026-12-02T11:00:00-05:00"))

    assert decision.decision == "block"
    assert "UNCOVERED_CALL_NOT_PERMITTED" in decision.reason_codes
