"""Accounts: cash, positions and the margin arithmetic (Decimal throughout).

Simplified margin model (documented, not IBKR's exact rules):
- stock long/short: initial margin 50 %, maintenance 25 % of |market value| (Reg T);
- long options: no margin beyond the premium paid; short options: |market value| + 20 % of the
  underlying's notional (initial and maintenance);
- available funds = equity with loan value - initial margin; excess liquidity = equity - maintenance;
- buying power: margin accounts 4x available funds when equity >= 25,000 (intraday, as IBKR reports
  for PDT accounts), else 2x (overnight Reg T); cash accounts: settled cash;
- day trades remaining: -1 (unlimited) for cash accounts and margin accounts with equity >= 25,000,
  else 3 minus the day trades of the last 5 business days; a value set through /sim/accounts is
  the starting point and each new day trade takes one off.
- commission: stocks 0.005 per share (min 1.00), options 0.65 per contract (min 1.00).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

ZERO = Decimal(0)
PDT_EQUITY = Decimal(25000)


@dataclass
class Position:
    """One position; avg_price is per unit (per share, per option before the multiplier)."""

    conid: int
    symbol: str
    sec_type: str
    quantity: Decimal
    avg_price: Decimal
    multiplier: int = 1
    market_price: Decimal | None = None  # for conids outside the simulated universe
    expiry: str | None = None  # YYYYMMDD
    strike: Decimal = ZERO
    right: str | None = None
    und_conid: int = 0
    name: str = ""
    listing_exchange: str = ""
    realized_pnl: Decimal = ZERO
    opened_on: date | None = None  # last day the position was opened or increased


def commission(sec_type: str, qty: Decimal) -> Decimal:
    """Per-fill commission of the simplified tiered schedule."""
    if sec_type == "OPT":
        return max(Decimal("1.00"), (abs(qty) * Decimal("0.65")).quantize(Decimal("0.01")))
    return max(Decimal("1.00"), (abs(qty) * Decimal("0.005")).quantize(Decimal("0.01")))


@dataclass
class Account:
    """A simulated IBKR account."""

    account_id: str
    account_type: str = "margin"  # margin | cash
    cash: Decimal = Decimal(1_000_000)
    options_level: int = 2
    title: str = "Paper Trader"
    positions: dict[int, Position] = field(default_factory=dict)
    realized_pnl: Decimal = ZERO
    day_trade_dates: list[date] = field(default_factory=list)
    day_trades_base: int | None = None
    day_trades_base_count: int = 0
    buying_power_override: Decimal | None = None
    available_funds_override: Decimal | None = None
    executions: list[dict[str, object]] = field(default_factory=list)

    # ---- valuation ------------------------------------------------------------------------------

    def metrics(self, price: Callable[[int], Decimal | None], today: date) -> dict[str, Decimal]:
        """Every summary figure, computed from cash, positions and current prices."""
        stock_mv = opt_mv = gross = upnl = init = maint = ZERO
        for p in self.positions.values():
            px = self.mark(p, price)
            mv = p.quantity * px * p.multiplier
            upnl += mv - p.quantity * p.avg_price * p.multiplier
            gross += abs(mv)
            if p.sec_type == "OPT":
                opt_mv += mv
                if p.quantity < 0:
                    und_px = price(p.und_conid) or p.strike
                    req = abs(mv) + Decimal("0.2") * abs(p.quantity) * und_px * p.multiplier
                    init += req
                    maint += req
            else:
                stock_mv += mv
                init += abs(mv) * Decimal("0.5")
                maint += abs(mv) * Decimal("0.25")
        equity = self.cash + stock_mv + opt_mv
        if self.account_type == "cash":
            available = self.cash
            bp = self.cash
        else:
            available = equity - init
            bp = available * (4 if equity >= PDT_EQUITY else 2)
        if self.available_funds_override is not None:
            available = self.available_funds_override
        if self.buying_power_override is not None:
            bp = self.buying_power_override
        return {
            "cash": self.cash,
            "stock_mv": stock_mv,
            "option_mv": opt_mv,
            "gross": gross,
            "equity": equity,
            "init_margin": init,
            "maint_margin": maint,
            "available_funds": available,
            "excess_liquidity": equity - maint,
            "buying_power": max(bp, ZERO),
            "unrealized_pnl": upnl,
            "realized_pnl": self.realized_pnl,
            "day_trades_remaining": Decimal(self.day_trades_remaining(today, equity)),
            **{f"day_trades_remaining_t{k}": Decimal(self.day_trades_remaining(today, equity, ahead=k))
               for k in range(1, 5)},
        }

    @staticmethod
    def mark(p: Position, price: Callable[[int], Decimal | None]) -> Decimal:
        """Market price of a position (its injected price when the conid is outside the universe)."""
        px = price(p.conid)
        if px is None:
            px = p.market_price if p.market_price is not None else p.avg_price
        return px

    def day_trades_remaining(self, today: date, equity: Decimal, ahead: int = 0) -> int:
        """IBKR's daytradesremaining (-1 = unlimited); `ahead` weekdays later: its `t+N` fields."""
        if self.day_trades_base is not None:
            return max(0, self.day_trades_base - (len(self.day_trade_dates) - self.day_trades_base_count))
        if self.account_type == "cash" or equity >= PDT_EQUITY:
            return -1
        d = today
        while ahead > 0:
            d += timedelta(days=1)
            ahead -= d.weekday() < 5
        window: list[date] = []
        while len(window) < 5:
            if d.weekday() < 5:
                window.append(d)
            d -= timedelta(days=1)
        return max(0, 3 - sum(1 for x in self.day_trade_dates if x in window))

    def set_day_trades_remaining(self, value: int | None) -> None:
        """Start counting down from `value` (None: back to the computed figure)."""
        self.day_trades_base = value
        self.day_trades_base_count = len(self.day_trade_dates)

    # ---- fills ----------------------------------------------------------------------------------

    def apply_fill(self, pos_template: Position, signed_qty: Decimal, price: Decimal, today: date) -> bool:
        """Book a fill (signed quantity: + buy, - sell) at `price`; True if it closed a position opened today."""
        fee = commission(pos_template.sec_type, signed_qty)
        mult = pos_template.multiplier
        self.cash -= signed_qty * price * mult + fee
        p = self.positions.get(pos_template.conid)
        if p is None:
            p = Position(**{**pos_template.__dict__, "quantity": ZERO, "avg_price": ZERO, "realized_pnl": ZERO})
            self.positions[p.conid] = p
        closes_today = False
        old = p.quantity
        if old == 0 or (old > 0) == (signed_qty > 0):
            total = old + signed_qty
            p.avg_price = (old * p.avg_price + signed_qty * price) / total
            p.quantity = total
            p.opened_on = today
        else:
            closing = min(abs(signed_qty), abs(old)) * (1 if signed_qty > 0 else -1)
            pnl = -closing * (price - p.avg_price) * mult
            p.realized_pnl += pnl
            self.realized_pnl += pnl
            closes_today = p.opened_on == today
            p.quantity = old + signed_qty
            if p.quantity != 0 and (p.quantity > 0) != (old > 0):
                p.avg_price, p.opened_on = price, today  # flipped side: the rest opens a new position
        self.realized_pnl -= fee
        if p.quantity == 0:
            del self.positions[p.conid]
        return closes_today

    def record_day_trade(self, today: date) -> None:
        """Count one day trade."""
        self.day_trade_dates.append(today)
