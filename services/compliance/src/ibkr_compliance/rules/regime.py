"""Regime resolution, RULES.md section 7.2."""

from __future__ import annotations

from datetime import date

from .config import RulesConfig
from .model import AccountState, RegimeName


def resolve_regime(account: AccountState, trade_day: date, config: RulesConfig) -> RegimeName:
    """The regime for an account on a trade date when none is configured for it."""
    switch = config.regime_switch
    if trade_day < switch.finra_effective:
        return "legacy_pdt"
    if trade_day > switch.phase_in_end:
        return "intraday_margin"
    if account.broker == "alpaca":
        return "intraday_margin" if trade_day >= switch.alpaca_switched else "legacy_pdt"
    if account.broker == "ibkr":
        remaining = account.daytrades_remaining
        return "legacy_pdt" if remaining is not None and remaining >= 0 else "intraday_margin"
    return switch.other_brokers_phase_in


def choose_regime(
    requested: str | None, account: AccountState, trade_day: date, config: RulesConfig
) -> tuple[RegimeName, bool]:
    """The configured regime if one is given, else the resolved one; second item: resolved?"""
    if requested == "legacy_pdt":
        return "legacy_pdt", False
    if requested == "intraday_margin":
        return "intraday_margin", False
    return resolve_regime(account, trade_day, config), True
