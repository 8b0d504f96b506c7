"""The account chart: net liquidation and unrealized P&L over the session, as an inline SVG.

The points come from the stored events (`audit.query`): `account.updated` carries net liquidation;
`positions.*` carry each position's unrealized P&L, summed over the positions at each event's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import Markup, escape

from ibkr_contract.audit import AuditEvent

WIDTH, HEIGHT, PAD = 760, 220, 46


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: list[tuple[datetime, Decimal]]


def _dec(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


def series_from_events(events: list[AuditEvent]) -> tuple[Series, Series]:
    """(net liquidation, unrealized P&L) from stored events, oldest first."""
    net: list[tuple[datetime, Decimal]] = []
    pnl: list[tuple[datetime, Decimal]] = []
    by_conid: dict[Any, Decimal] = {}
    for event in sorted(events, key=lambda e: e.seq):
        payload = event.payload or {}
        if event.type == "account.updated" and isinstance(payload.get("account"), dict):
            value = _dec(payload["account"].get("net_liquidation"))
            if value is not None:
                net.append((event.occurred_at, value))
        elif event.type.startswith("positions.") and isinstance(payload.get("position"), dict):
            position = payload["position"]
            if event.type == "positions.closed":
                by_conid.pop(position.get("conid"), None)
            else:
                by_conid[position.get("conid")] = _dec(position.get("unrealized_pnl")) or Decimal(0)
            pnl.append((event.occurred_at, sum(by_conid.values(), Decimal(0))))
    return Series("net liquidation", "#2563eb", net), Series("unrealized P&L", "#d97706", pnl)


def _path(points: list[tuple[datetime, Decimal]], t0: float, t1: float, lo: Decimal, hi: Decimal,
          top: int, height: int) -> str:
    span_t = (t1 - t0) or 1.0
    span_v = (hi - lo) or Decimal(1)
    parts = []
    for n, (at, value) in enumerate(points):
        x = PAD + (at.timestamp() - t0) / span_t * (WIDTH - 2 * PAD)
        y = top + height - float((value - lo) / span_v) * height
        parts.append(f"{'M' if n == 0 else 'L'}{x:.1f},{y:.1f}")
    if len(points) == 1:
        parts.append(f"L{WIDTH - PAD:.1f},{y:.1f}")
    return " ".join(parts)


def svg(*series: Series) -> Markup:
    """Each series on its own band (its own scale), with its first and last values written beside it."""
    shown = [s for s in series if s.points]
    if not shown:
        return Markup('<p class="muted">No account or position events stored yet in this session.</p>')
    times = [at.timestamp() for s in shown for at, _ in s.points]
    t0, t1 = min(times), max(times)
    band = (HEIGHT - 20) // len(shown)
    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="account chart">']
    for n, s in enumerate(shown):
        values = [v for _, v in s.points]
        lo, hi = min(values), max(values)
        if lo == hi:
            lo, hi = lo - 1, hi + 1
        top = 10 + n * band
        out.append(f'<line x1="{PAD}" y1="{top + band - 8}" x2="{WIDTH - PAD}" y2="{top + band - 8}" '
                   'stroke="#e5e7eb"/>')
        out.append(f'<path d="{_path(s.points, t0, t1, lo, hi, top + 14, band - 30)}" fill="none" '
                   f'stroke="{s.colour}" stroke-width="2"/>')
        label = f"{s.name}: {values[0]:,.2f} → {values[-1]:,.2f} ({len(values)} points)"
        out.append(f'<text x="{PAD}" y="{top + 10}" fill="{s.colour}" font-size="12">{escape(label)}</text>')
    start = min(at for s in shown for at, _ in s.points).strftime("%H:%M:%S UTC")
    end = max(at for s in shown for at, _ in s.points).strftime("%H:%M:%S UTC")
    out.append(f'<text x="{PAD}" y="{HEIGHT - 2}" font-size="11" fill="#6b7280">{start}</text>')
    out.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 2}" font-size="11" fill="#6b7280" '
               f'text-anchor="end">{end}</text>')
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 (numbers, times and escaped labels only)
