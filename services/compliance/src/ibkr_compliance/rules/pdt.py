"""Day-trade counting (RULES.md 1.1, 1.2, 7.4): both methods, the window and the projection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from .config import CountingMethod
from .hours import MarketCalendar, trade_date
from .model import AccountState, DayTradeRecord, Execution, Position, Side

ZERO = Decimal("0")
Kind = Literal["open", "day_trade", "continuation", "not_day_trade"]


@dataclass
class _Lot:
    qty: Decimal  # signed: + long, - short
    counted: bool = False


@dataclass
class SeriesBook:
    """The same-day state of one series: the overnight lot and today's opening lots."""

    method: CountingMethod
    overnight: Decimal = ZERO
    lots: list[_Lot] = field(default_factory=list)
    run_open: bool = False

    @property
    def position(self) -> Decimal:
        return self.overnight + sum((lot.qty for lot in self.lots), ZERO)

    def apply(self, side: Side, qty: Decimal) -> tuple[Kind, int]:
        """Apply one transaction; return its kind and the new day trades it makes."""
        direction = Decimal(1) if side == "buy" else Decimal(-1)
        position = self.position
        if position == 0 or (position > 0) == (direction > 0):
            self._open(direction * qty)
            return "open", 0
        closing = min(qty, abs(position))
        touched = self._close(closing)
        remainder = qty - closing
        if remainder > 0:
            self._open(direction * remainder)
        if not touched:
            return "not_day_trade", 0
        if self.method == "per_opening_transaction":
            new = sum(1 for lot in touched if not lot.counted)
            for lot in touched:
                lot.counted = True
        else:
            new = 1 if self.run_open else 0
            self.run_open = False
        return ("day_trade" if new else "continuation"), new

    def _open(self, signed_qty: Decimal) -> None:
        self.lots.append(_Lot(signed_qty))
        self.run_open = True

    def _close(self, qty: Decimal) -> list[_Lot]:
        touched: list[_Lot] = []
        left = qty
        for lot in self.lots:
            if left <= 0:
                break
            if lot.qty == 0:
                continue
            take = min(abs(lot.qty), left)
            lot.qty -= take if lot.qty > 0 else -take
            left -= take
            touched.append(lot)
        if left > 0:
            self.overnight -= left if self.overnight > 0 else -left
        self.lots = [lot for lot in self.lots if lot.qty != 0 or lot in touched]
        return touched


@dataclass(frozen=True)
class LegDayTrade:
    symbol: str
    kind: Kind
    new: int


def today_executions(account: AccountState, now: datetime) -> list[Execution]:
    """Today's executions, plus a synthetic opening for a position opened today without any."""
    today = trade_date(now)
    executions = sorted((e for e in account.today_executions if trade_date(e.time) == today), key=lambda e: e.time)
    seen = {e.symbol for e in executions}
    for position in account.positions:
        if position.symbol in seen or position.opened is None or position.qty == 0:
            continue
        if trade_date(position.opened) == today:
            side: Side = "buy" if position.qty > 0 else "sell"
            executions.append(Execution(time=position.opened, symbol=position.symbol, side=side, qty=abs(position.qty)))
    return sorted(executions, key=lambda e: e.time)


def earlier_day_trades(account: AccountState, now: datetime, method: CountingMethod) -> tuple[DayTradeRecord, ...]:
    """Day trades of the sessions before today, replayed from the executions the account has.

    Each earlier day starts from the position held now less everything executed since.
    """
    today = trade_date(now)
    by_day: dict[date, list[Execution]] = {}
    for e in account.today_executions:
        day = trade_date(e.time)
        if day < today:
            by_day.setdefault(day, []).append(e)
    held = {p.symbol: p.qty for p in account.positions}
    for e in account.today_executions:
        if trade_date(e.time) >= today:
            held[e.symbol] = held.get(e.symbol, ZERO) - (e.qty if e.side == "buy" else -e.qty)
    records: list[DayTradeRecord] = []
    for day in sorted(by_day, reverse=True):  # walk back: the position at the end of `day` is known
        executions = sorted(by_day[day], key=lambda e: e.time)
        _, completed = build_books(account.model_copy(update={"positions": _positions(held)}), executions, method)
        if completed:
            records.append(DayTradeRecord(date=day, count=completed))
        for e in executions:
            held[e.symbol] = held.get(e.symbol, ZERO) - (e.qty if e.side == "buy" else -e.qty)
    return tuple(sorted(records, key=lambda r: r.date))


def _positions(held: dict[str, Decimal]) -> tuple[Position, ...]:
    return tuple(Position(symbol=symbol, qty=qty) for symbol, qty in held.items() if qty != 0)


def build_books(
    account: AccountState, executions: Sequence[Execution], method: CountingMethod
) -> tuple[dict[str, SeriesBook], int]:
    """Replay today's executions per series; return the books and today's completed day trades."""
    held = {p.symbol: p.qty for p in account.positions}
    signed: dict[str, Decimal] = {}
    for execution in executions:
        signed[execution.symbol] = signed.get(execution.symbol, ZERO) + (
            execution.qty if execution.side == "buy" else -execution.qty
        )
    books: dict[str, SeriesBook] = {}
    for symbol in set(held) | set(signed):
        books[symbol] = SeriesBook(method=method, overnight=held.get(symbol, ZERO) - signed.get(symbol, ZERO))
    completed = 0
    for execution in executions:
        _, new = books[execution.symbol].apply(execution.side, execution.qty)
        completed += new
    return books, completed


def order_day_trades(
    books: dict[str, SeriesBook],
    legs: Iterable[tuple[str, Side, Decimal]],
    method: CountingMethod,
    executions: Sequence[Execution],
) -> tuple[list[LegDayTrade], int]:
    """New day trades the order would make, per leg and in total (a spread opened as one order
    and closed as one order is one day trade)."""
    results: list[LegDayTrade] = []
    for symbol, side, qty in legs:
        book = books.setdefault(symbol, SeriesBook(method=method))
        kind, new = book.apply(side, qty)
        results.append(LegDayTrade(symbol, kind, new))
    total = sum(r.new for r in results)
    trading = [r for r in results if r.new > 0]
    if len(trading) > 1 and len(trading) == len(results) and _opened_together(trading, executions):
        total = 1
    return results, total


def _opened_together(legs: list[LegDayTrade], executions: Sequence[Execution]) -> bool:
    groups: list[set[str]] = []
    for leg in legs:
        keys = {
            e.order_id or e.time.isoformat() for e in executions if e.symbol == leg.symbol
        }
        groups.append(keys)
    return bool(set.intersection(*groups))


@dataclass(frozen=True)
class WindowCount:
    sessions: list[date]
    local_used: int
    today_completed: int


def window_count(
    account: AccountState, session: date, today_completed: int, calendar: MarketCalendar, count: int
) -> WindowCount:
    """Completed day trades in the window: listed ones before today plus today's (the larger of
    the listed and the replayed figure)."""
    sessions = calendar.window_ending(session, count)
    if account.day_trades_in_window is None:
        broker = account.broker_day_trade_count
        used = broker if broker is not None else today_completed
        return WindowCount(sessions, max(used, today_completed), today_completed)
    earlier = sum(r.count for r in account.day_trades_in_window if r.date in sessions and r.date != session)
    listed_today = sum(r.count for r in account.day_trades_in_window if r.date == session)
    return WindowCount(sessions, earlier + max(listed_today, today_completed), today_completed)


def projection(
    account: AccountState,
    session: date,
    today_completed: int,
    calendar: MarketCalendar,
    count: int,
    maximum: int,
) -> tuple[list[date], list[int]]:
    """Local equivalent of IBKR's ``daytradesremaining`` t..t+4 (before the order)."""
    days = calendar.sessions_from(session, count)
    records = list(account.day_trades_in_window or ())
    listed_today = sum(r.count for r in records if r.date == session)
    remaining: list[int] = []
    for day in days:
        window = set(calendar.window_ending(day, count))
        used = sum(r.count for r in records if r.date in window and r.date != session)
        if session in window:
            used += max(listed_today, today_completed)
        remaining.append(max(maximum - used, 0))
    return days, remaining
