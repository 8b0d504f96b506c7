"""The ``legacy_pdt`` rules, RULES.md section 7.4 (margin accounts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .config import RulesConfig
from .hours import MarketCalendar, pdt_session
from .model import AccountState, Severity, Side, parse_occ
from .outcome import Outcome
from .pdt import (
    LegDayTrade,
    build_books,
    earlier_day_trades,
    order_day_trades,
    projection,
    today_executions,
    window_count,
)

ZERO = Decimal("0")


@dataclass(frozen=True)
class OrderFacts:
    """What the day-trade rules need to know about the order."""

    opening: bool
    legs: list[tuple[str, Side, Decimal]]
    requirement: Decimal | None
    is_option: bool


def pdt_equity(account: AccountState, config: RulesConfig) -> Decimal | None:
    current, previous = account.equity, account.previous_equity
    if config.pdt_equity_definition == "previous_close":
        return previous if previous is not None else current
    if config.pdt_equity_definition == "current":
        return current if current is not None else previous
    values = [v for v in (current, previous) if v is not None]
    return min(values) if values else None


def _ibkr_counter(account: AccountState) -> int | None:
    return account.daytrades_remaining if account.broker == "ibkr" else None


def apply_legacy_pdt(
    account: AccountState,
    facts: OrderFacts,
    config: RulesConfig,
    now: datetime,
    calendar: MarketCalendar,
    out: Outcome,
) -> None:
    if account.account_type == "cash":
        out.add("PDT_NOT_APPLICABLE_CASH_ACCOUNT", "allow", "cash account: the PDT rule does not apply")
        return
    maximum = config.pdt_max_day_trades_under_min_equity
    session = pdt_session(now, calendar)
    method = config.counting_method_for(account.broker)
    if account.day_trades_in_window is None and account.broker_day_trade_count is None:
        earlier = earlier_day_trades(account, now, method)
        if earlier:  # no list from the broker: the executions we have tell the earlier sessions
            account = account.model_copy(update={"day_trades_in_window": earlier})
    executions = today_executions(account, now)
    books, today_completed = build_books(account, executions, method)
    counted = window_count(account, session, today_completed, calendar, config.pdt_window_sessions)
    used = counted.local_used
    counter = _ibkr_counter(account)
    if counter is not None and counter >= 0 and config.ibkr_counter_overrides_local:
        used = max(maximum - counter, used)
    leg_results, new = order_day_trades(books, facts.legs, method, executions)
    equity = pdt_equity(account, config)
    days, remaining = projection(account, session, today_completed, calendar, config.pdt_window_sessions, maximum)
    out.computed.update(
        window_sessions=[d.isoformat() for d in counted.sessions],
        counting_method=method,
        local_day_trades_used=counted.local_used,
        day_trades_used_before=used,
        new_day_trades=new,
        day_trades_used_after=used + new,
        pdt_equity=equity,
        projection_sessions=[d.isoformat() for d in days],
        local_daytradesremaining_projection=remaining,
    )
    if counter is not None:
        out.computed["ibkr_daytradesremaining"] = counter
        out.computed["ibkr_daytradesremaining_projection"] = [counter, *account.daytrades_remaining_future]
    if not facts.opening and new == 0:
        _classify_close(leg_results, out)
    exempt = equity is not None and equity >= config.pdt_min_equity
    if account.pattern_day_trader:
        _flagged(account, facts, exempt, new, config, now, out)
        return
    if exempt:
        out.add("PDT_EXEMPT_MIN_EQUITY", "allow", f"PDT equity {equity} is at least {config.pdt_min_equity}")
        return
    if counter == -1:
        out.add("IBKR_DAY_TRADES_UNLIMITED", "allow", "IBKR reports unlimited day trades")
        return
    _count_rules(account, facts, used, new, config, out)


def _classify_close(leg_results: list[LegDayTrade], out: Outcome) -> None:
    if any(r.kind == "continuation" for r in leg_results):
        out.add("SAME_DAY_TRADE_CONTINUATION", "allow", "further close after the same opening: no new day trade")
    elif leg_results:
        out.add("NOT_A_DAY_TRADE", "allow", "closes a position with no purchase of the series earlier today")


def _count_rules(
    account: AccountState, facts: OrderFacts, used: int, new: int, config: RulesConfig, out: Outcome
) -> None:
    maximum = config.pdt_max_day_trades_under_min_equity
    after = used + new
    if new >= 1 and after > maximum:
        total = account.total_trades_in_window
        ratio = Decimal(after) / Decimal(total + 1) if total is not None else None
        if ratio is not None:
            out.computed["six_percent_ratio"] = ratio.quantize(Decimal("0.0001"))
        if config.apply_six_percent_exemption and ratio is not None and ratio <= config.six_percent_threshold:
            out.add(
                "PDT_SIX_PERCENT_EXEMPTION_APPLIED",
                "warn",
                f"day trades are {ratio:.4f} of all trades in the window (<= {config.six_percent_threshold})",
            )
        else:
            severity: Severity = "block" if facts.opening or config.pdt_close_policy == "block" else "warn"
            out.add(
                "PDT_4TH_DAY_TRADE",
                severity,
                f"would be day trade {after} in {config.pdt_window_sessions} sessions with equity under the minimum",
            )
    elif new >= 1 and after == maximum:
        out.add("PDT_LAST_DAY_TRADE", "warn", f"this is day trade {after}: none left in the window")
    if facts.opening and used >= maximum:
        if account.broker == "ibkr":
            out.add(
                "IBKR_PDT_NO_DAY_TRADES_REMAINING",
                "block",
                "IBKR reports no day trades remaining: opening orders are rejected",
            )
        else:
            out.add(
                "PDT_NO_DAY_TRADES_LEFT_OPEN",
                "warn",
                "no day trades left: a position opened now cannot be closed today",
            )
    if used >= maximum and account.broker != "ibkr" and _pending_pair(account, facts):
        out.add(
            "PDT_PENDING_ORDER_PAIR",
            "block",
            "a working order on the opposite side of the same series would make a potential day trade",
        )


def _pending_pair(account: AccountState, facts: OrderFacts) -> bool:
    for symbol, side, _ in facts.legs:
        for order in account.open_orders:
            if order.is_working and order.symbol == symbol and order.side != side:
                return True
    return False


def _flagged(
    account: AccountState,
    facts: OrderFacts,
    exempt: bool,
    new: int,
    config: RulesConfig,
    now: datetime,
    out: Outcome,
) -> None:
    if not exempt:
        if facts.opening or new > 0:
            out.add(
                "PDT_FLAGGED_BELOW_MIN_EQUITY",
                "block",
                f"flagged pattern day trader with PDT equity under {config.pdt_min_equity}",
            )
        return
    out.add("PDT_EXEMPT_MIN_EQUITY", "allow", f"PDT equity is at least {config.pdt_min_equity}")
    if not facts.opening:
        return
    previous = account.previous_equity if account.previous_equity is not None else account.equity
    excess = (previous or ZERO) - account.previous_maintenance_margin
    stock_dtbp = excess * 4
    limit = excess if facts.is_option else stock_dtbp
    requirement = (facts.requirement or ZERO) + _today_open_cost(account, now, config)
    out.computed.update(
        maintenance_excess=excess,
        stock_dtbp_4x=stock_dtbp,
        dtbp=limit,
        day_trade_requirement=requirement,
    )
    if requirement > limit:
        out.add(
            "DTBP_EXCEEDED",
            "block",
            f"day-trade requirement {requirement} exceeds day-trading buying power {limit}",
        )


def _today_open_cost(account: AccountState, now: datetime, config: RulesConfig) -> Decimal:
    """Cost of positions opened today and still open (they hold day-trading buying power)."""
    executions = today_executions(account, now)
    held = {p.symbol: abs(p.qty) for p in account.positions}
    total = ZERO
    for symbol in {e.symbol for e in executions}:
        buys = [e for e in executions if e.symbol == symbol and e.side == "buy" and e.price is not None]
        bought = sum((e.qty for e in buys), ZERO)
        if bought == 0:
            continue
        average = sum((e.qty * (e.price or ZERO) for e in buys), ZERO) / bought
        multiplier = config.options_multiplier if parse_occ(symbol) is not None else 1
        total += min(held.get(symbol, ZERO), bought) * average * multiplier
    return total
