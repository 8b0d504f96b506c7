"""Unrealized P&L, checked against price and cost rather than copied blindly.

expected = (market price - average price) x quantity x multiplier. The broker's figure is kept when
it is within the tolerance (absolute, or relative to the market value); otherwise the computed
figure is stored and the difference is reported as a sync problem.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from ibkr_sync_worker.normalize import PositionRecord, dec


@dataclass(frozen=True, slots=True)
class PnlMismatch:
    conid: int
    broker: Decimal | None
    computed: Decimal

    def details(self) -> dict[str, str | int | None]:
        return {"conid": self.conid, "broker": None if self.broker is None else str(self.broker),
                "computed": str(self.computed)}


def expected_pnl(p: PositionRecord) -> Decimal | None:
    """(market price - average price) x quantity x multiplier, or None when price or cost is unknown."""
    if p.market_price is None or p.avg_price is None:
        return None
    multiplier = p.multiplier if p.multiplier and p.multiplier > 0 else Decimal(1)
    return dec((p.market_price - p.avg_price) * p.quantity * multiplier)


def check_pnl(
    p: PositionRecord, tolerance_abs: Decimal, tolerance_rel: Decimal
) -> tuple[PositionRecord, PnlMismatch | None]:
    """The position with a trustworthy unrealized P&L, and the mismatch found (if any).

    A missing broker figure is filled in from price and cost without a problem; a figure that
    disagrees beyond the tolerance is replaced by the computed one and reported.
    """
    computed = expected_pnl(p)
    if computed is None:
        return p, None
    if p.unrealized_pnl is None:
        return replace(p, unrealized_pnl=computed), None
    allowed = max(tolerance_abs, abs(p.market_value or Decimal(0)) * tolerance_rel)
    if abs(p.unrealized_pnl - computed) <= allowed:
        return p, None
    return replace(p, unrealized_pnl=computed), PnlMismatch(p.conid, p.unrealized_pnl, computed)
