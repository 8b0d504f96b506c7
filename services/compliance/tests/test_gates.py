"""The operator's trading halt: opening orders are refused, closing orders still go."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from ibkr_compliance.rules import AccountState, OrderSpec, Position, RulesConfig, ServiceFlags, evaluate

SYMBOL = "AAPL261218C00250000"
NOW = "2026-11-24T11:00:00-05:00"


def test_halt_blocks_an_opening_order(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    decision = evaluate(order(SYMBOL, "buy", limit_price=Decimal("2.00"), position_effect="open"),
                        ibkr_account(), config, at(NOW), flags=ServiceFlags(trading_halted=True))
    assert decision.decision == "block"
    assert "TRADING_HALTED" in decision.reason_codes


def test_halt_lets_a_closing_order_through(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, order: Callable[..., OrderSpec],
    at: Callable[[str], datetime],
) -> None:
    account = ibkr_account(positions=(Position(symbol=SYMBOL, qty=Decimal("2")),))
    decision = evaluate(order(SYMBOL, "sell", qty="2", limit_price=Decimal("2.00"), position_effect="close"),
                        account, config, at(NOW), flags=ServiceFlags(trading_halted=True))
    assert "TRADING_HALTED" not in decision.reason_codes
    assert decision.decision != "block", decision.reason_codes
