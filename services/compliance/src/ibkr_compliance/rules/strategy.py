"""What an opening option order is (long, covered, naked, spread, ...), from its legs' payoff."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .model import OptionContract, Side

ZERO = Decimal("0")


@dataclass(frozen=True)
class LegSpec:
    """One option leg of the order, with the contract parsed; ``ratio`` per combo unit."""

    symbol: str
    contract: OptionContract
    side: Side
    ratio: int


@dataclass(frozen=True)
class Strategy:
    kind: str
    ibkr_level: int
    alpaca_level: int | None
    naked_call: bool
    bounded: bool
    structural_loss: Decimal
    debit_structure: bool
    credit_structure: bool
    covered_contracts: Decimal = ZERO


def _sign(leg: LegSpec) -> int:
    return 1 if leg.side == "buy" else -1


def _value(leg: LegSpec, price: Decimal) -> Decimal:
    strike = leg.contract.strike
    intrinsic = max(price - strike, ZERO) if leg.contract.right == "C" else max(strike - price, ZERO)
    return _sign(leg) * leg.ratio * intrinsic


def payoff_extremes(legs: list[LegSpec]) -> tuple[Decimal | None, Decimal | None]:
    """(min, max) of the expiry payoff per combo unit and share; ``None`` when unbounded."""
    points = [ZERO, *sorted({leg.contract.strike for leg in legs})]
    values = [sum((_value(leg, p) for leg in legs), ZERO) for p in points]
    call_slope = sum(_sign(leg) * leg.ratio for leg in legs if leg.contract.right == "C")
    low = min(values) if call_slope >= 0 else None
    high = max(values) if call_slope <= 0 else None
    return low, high


def _long_expires_first(legs: list[LegSpec], right: str) -> bool:
    shorts = [leg.contract.expiry for leg in legs if leg.side == "sell" and leg.contract.right == right]
    longs = [leg.contract.expiry for leg in legs if leg.side == "buy" and leg.contract.right == right]
    return bool(shorts and longs) and min(longs) < max(shorts)


def _is_vertical(legs: list[LegSpec]) -> bool:
    return (
        len(legs) == 2
        and legs[0].contract.right == legs[1].contract.right
        and legs[0].side != legs[1].side
        and legs[0].ratio == legs[1].ratio
    )


def classify(
    legs: list[LegSpec], qty: Decimal, free_shares: Decimal, short_shares: Decimal, multiplier: int
) -> Strategy:
    """Classify the opening option legs of an order."""
    if len(legs) == 1:
        return _single(legs[0], qty, free_shares, short_shares, multiplier)
    low, high = payoff_extremes(legs)
    debit_structure = low is not None and low >= ZERO
    credit_structure = high is not None and high <= ZERO
    loss = max(-low, ZERO) if low is not None else ZERO
    if all(leg.side == "buy" for leg in legs):
        return Strategy("long_combo", 2, 3, False, True, ZERO, True, False)
    calls_uncovered = low is None or _long_expires_first(legs, "C")
    if calls_uncovered:
        covered = _stock_covered(legs, qty, free_shares, short_shares, multiplier)
        if covered is not None:
            return covered
        return Strategy("uncovered_combo", 4, None, True, False, loss, False, credit_structure)
    if _long_expires_first(legs, "P"):
        return Strategy("credit_calendar", 4, 3, False, False, loss, False, credit_structure)
    if len({leg.contract.expiry for leg in legs}) > 1:
        return Strategy("calendar", 3, 3, False, True, loss, debit_structure, credit_structure)
    if _is_vertical(legs):
        kind, level = ("debit_spread", 2) if debit_structure else ("credit_spread", 3)
        return Strategy(kind, level, 3, False, True, loss, debit_structure, credit_structure)
    puts = [leg for leg in legs if leg.contract.right == "P"]
    calls = [leg for leg in legs if leg.contract.right == "C"]
    if len(legs) == 4 and _is_vertical(puts) and _is_vertical(calls):
        kind, level = ("long_iron_condor", 2) if debit_structure else ("iron_condor", 3)
        return Strategy(kind, level, 3, False, True, loss, debit_structure, credit_structure)
    return Strategy("multi_leg", 3, 3, False, True, loss, debit_structure, credit_structure)


def _stock_covered(
    legs: list[LegSpec], qty: Decimal, free_shares: Decimal, short_shares: Decimal, multiplier: int
) -> Strategy | None:
    """A combo whose uncovered short calls are covered by shares held (collar, conversion, covered ratio).

    The covered short calls need nothing (as a covered call); the rest of the legs are classified alone.
    None when the shares do not cover them.
    """
    short_calls = sorted((i for i, leg in enumerate(legs) if leg.side == "sell" and leg.contract.right == "C"),
                         key=lambda i: legs[i].contract.strike, reverse=True)
    long_calls = sum(leg.ratio for leg in legs if leg.side == "buy" and leg.contract.right == "C")
    calendar = _long_expires_first(legs, "C")
    per_unit = sum(legs[i].ratio for i in short_calls) - (0 if calendar else long_calls)
    if per_unit <= 0 or max(free_shares, ZERO) < qty * per_unit * multiplier:
        return None
    covered: dict[int, int] = {}
    to_cover = per_unit
    for i in short_calls:  # the highest strikes are covered first
        covered[i] = min(legs[i].ratio, to_cover)
        to_cover -= covered[i]
    remaining = [LegSpec(leg.symbol, leg.contract, leg.side, leg.ratio - covered.get(i, 0))
                 for i, leg in enumerate(legs) if leg.ratio > covered.get(i, 0)]
    rest = classify(remaining, qty, ZERO, short_shares, multiplier) if remaining else None
    if rest is None:
        return Strategy("covered_combo", 1, 1, False, True, ZERO, False, True, qty * per_unit)
    alpaca = max(2, rest.alpaca_level) if rest.alpaca_level is not None else None
    return Strategy("covered_combo", max(2, rest.ibkr_level), alpaca, rest.naked_call, rest.bounded,
                    rest.structural_loss, rest.debit_structure, rest.credit_structure, qty * per_unit)


def _single(leg: LegSpec, qty: Decimal, free_shares: Decimal, short_shares: Decimal, multiplier: int) -> Strategy:
    contracts = qty * leg.ratio
    if leg.side == "buy":
        kind = "long_call" if leg.contract.right == "C" else "long_put"
        return Strategy(kind, 2, 2, False, True, ZERO, True, False)
    if leg.contract.right == "C":
        covered = min(contracts, Decimal(int(max(free_shares, ZERO) // multiplier)))
        if covered >= contracts:
            return Strategy("covered_call", 1, 1, False, True, ZERO, False, True, covered)
        return Strategy("naked_call", 4, None, True, False, ZERO, False, True, covered)
    if short_shares >= contracts * multiplier:
        return Strategy("covered_put", 2, 1, False, True, ZERO, False, True, contracts)
    return Strategy("short_put", 3, 1, False, True, leg.contract.strike, False, True)
