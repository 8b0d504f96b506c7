"""Regime resolution, RULES.md 7.2: edges around 2026-06-04 and the phase-in end 2027-10-20."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from ibkr_compliance.rules import AccountState, RulesConfig, resolve_regime
from ibkr_compliance.rules.regime import choose_regime


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2026, 6, 3), "legacy_pdt"), (date(2026, 6, 4), "intraday_margin"), (date(2027, 10, 21), "intraday_margin")],
)
def test_alpaca_switches_on_the_effective_date(
    alpaca_account: Callable[..., AccountState], config: RulesConfig, day: date, expected: str
) -> None:
    assert resolve_regime(alpaca_account(), day, config) == expected


@pytest.mark.parametrize(
    ("day", "counter", "expected"),
    [
        (date(2026, 6, 3), -1, "legacy_pdt"),
        (date(2026, 6, 4), 2, "legacy_pdt"),
        (date(2026, 6, 4), -1, "intraday_margin"),
        (date(2027, 10, 20), 0, "legacy_pdt"),
        (date(2027, 10, 21), 0, "intraday_margin"),
    ],
)
def test_ibkr_follows_its_counter_during_the_phase_in_only(
    ibkr_account: Callable[..., AccountState], config: RulesConfig, day: date, counter: int, expected: str
) -> None:
    account = ibkr_account(daytrades_remaining=counter)

    assert resolve_regime(account, day, config) == expected


def test_explicit_regime_is_taken_as_configured(
    alpaca_account: Callable[..., AccountState], config: RulesConfig
) -> None:
    regime, resolved = choose_regime("legacy_pdt", alpaca_account(), date(2026, 12, 1), config)

    assert (regime, resolved) == ("legacy_pdt", False)


def test_auto_regime_is_resolved_and_reported(
    alpaca_account: Callable[..., AccountState], config: RulesConfig
) -> None:
    regime, resolved = choose_regime("auto", alpaca_account(), date(2026, 12, 1), config)

    assert (regime, resolved) == ("intraday_margin", True)
