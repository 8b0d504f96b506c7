"""Cash-account settlement rules, RULES.md section 7.6 (good faith, 90-day freeze)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from .hours import trade_date
from .model import AccountState, Side, parse_occ
from .outcome import Outcome


def check_good_faith(
    account: AccountState,
    legs: list[tuple[str, Side, Decimal]],
    opening: bool,
    now: datetime,
    options_multiplier: int,
    out: Outcome,
) -> None:
    """Warn when a closing sale sells a purchase paid with unsettled proceeds."""
    if account.account_type != "cash" or opening:
        return
    today = trade_date(now)
    executions = [e for e in account.today_executions if trade_date(e.time) == today]
    for symbol, side, _ in legs:
        if side != "sell":
            continue
        if any(p.symbol == symbol and p.unsettled_funds for p in account.positions):
            _warn(symbol, out)
            continue
        buys = [e for e in executions if e.symbol == symbol and e.side == "buy"]
        for buy in buys:
            earlier_sales = [e for e in executions if e.side == "sell" and e.time < buy.time and e.symbol != symbol]
            multiplier = options_multiplier if parse_occ(symbol) is not None else 1
            cost = buy.qty * (buy.price or Decimal("0")) * multiplier
            short_of_settled = account.settled_cash is None or account.settled_cash < cost
            if buy.unsettled_funds or (earlier_sales and short_of_settled):
                _warn(symbol, out)
                break


def _warn(symbol: str, out: Outcome) -> None:
    out.add(
        "GOOD_FAITH_VIOLATION_RISK",
        "warn",
        f"selling {symbol} bought with unsettled proceeds before they settle",
    )


def check_settled_funds(account: AccountState, cost: Decimal, out: Outcome) -> None:
    """Under a 90-day freeze, a purchase must be covered by settled cash."""
    settled = account.settled_cash
    if settled is None:
        settled = account.cash if account.cash is not None else Decimal("0")
    out.computed["settled_cash"] = settled
    if cost > settled:
        out.add(
            "INSUFFICIENT_SETTLED_FUNDS",
            "block",
            f"account under a 90-day freeze: purchase {cost} exceeds settled cash {settled}",
        )
