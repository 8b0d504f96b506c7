"""Hours from the XNYS calendar: early closes, late-close products, windows, reset windows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest

from ibkr_compliance.rules import RulesConfig, parse_occ, xnys
from ibkr_compliance.rules.hours import in_ibkr_reset_window, product_hours


def _contract(symbol: str) -> list:  # type: ignore[type-arg]
    contract = parse_occ(symbol)
    assert contract is not None
    return [contract]


@pytest.mark.parametrize(
    ("symbol", "when", "is_open"),
    [
        ("AAPL261218C00250000", "2026-11-27T12:59:00-05:00", True),
        ("AAPL261218C00250000", "2026-11-27T13:05:00-05:00", False),
        ("SPY261218C00650000", "2026-11-27T13:10:00-05:00", True),
        ("SPY261218C00650000", "2026-11-27T13:15:00-05:00", False),
        ("SPY261218C00650000", "2026-11-30T16:10:00-05:00", True),
        ("AAPL261218C00250000", "2026-11-30T16:00:00-05:00", False),
        ("SPY261130C00650000", "2026-11-30T16:10:00-05:00", False),
    ],
)
def test_product_session_on_early_close_and_late_close_products(
    config: RulesConfig, at: Callable[[str], datetime], symbol: str, when: str, is_open: bool
) -> None:
    hours = product_hours(at(when), _contract(symbol), xnys(), config)

    assert hours.is_open is is_open


def test_next_session_after_thanksgiving_is_the_early_close_friday(
    config: RulesConfig, at: Callable[[str], datetime]
) -> None:
    hours = product_hours(at("2026-11-26T10:00:00-05:00"), _contract("SPY261218C00650000"), xnys(), config)

    assert hours.next_session == date(2026, 11, 27)
    assert hours.next_close_et.strftime("%H:%M") == "13:15"


@pytest.mark.parametrize(
    ("session", "window"),
    [
        (date(2026, 4, 7), ["2026-03-31", "2026-04-01", "2026-04-02", "2026-04-06", "2026-04-07"]),
        (date(2025, 12, 29), ["2025-12-22", "2025-12-23", "2025-12-24", "2025-12-26", "2025-12-29"]),
        (date(2026, 12, 1), ["2026-11-24", "2026-11-25", "2026-11-27", "2026-11-30", "2026-12-01"]),
        (date(2027, 1, 4), ["2026-12-28", "2026-12-29", "2026-12-30", "2026-12-31", "2027-01-04"]),
    ],
)
def test_pdt_window_skips_holidays_and_counts_early_closes(session: date, window: list[str]) -> None:
    assert [d.isoformat() for d in xnys().window_ending(session, 5)] == window


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        ("2026-12-02T23:50:00-05:00", True),
        ("2026-12-03T01:30:00-05:00", True),
        ("2026-12-03T01:45:00-05:00", False),
        ("2026-12-03T10:00:00-05:00", False),
        ("2026-12-04T23:10:00-05:00", True),
        ("2026-12-05T02:30:00-05:00", True),
    ],
)
def test_ibkr_reset_windows(config: RulesConfig, at: Callable[[str], datetime], when: str, inside: bool) -> None:
    assert in_ibkr_reset_window(at(when), config) is inside
