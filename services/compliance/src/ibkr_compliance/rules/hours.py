"""Sessions from the XNYS calendar (exchange_calendars), product hours, IBKR reset windows."""

from __future__ import annotations

import bisect
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals

from .config import RulesConfig
from .model import OptionContract

NY = ZoneInfo("America/New_York")
_CAL_START = "2015-01-01"
_CAL_END = "2035-12-31"


@dataclass(frozen=True)
class SessionTimes:
    open: datetime
    close: datetime

    @property
    def early_close(self) -> bool:
        return self.close.astimezone(NY).time() < time(16, 0)


class MarketCalendar:
    """The XNYS sessions with their open and close (early closes included)."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas deprecation noise inside exchange_calendars
            cal = xcals.get_calendar("XNYS", start=_CAL_START, end=_CAL_END)
        schedule = cal.schedule
        self._sessions: list[date] = [ts.date() for ts in schedule.index]
        self._times: dict[date, SessionTimes] = {
            ts.date(): SessionTimes(op.to_pydatetime(), cl.to_pydatetime())
            for ts, op, cl in zip(schedule.index, schedule["open"], schedule["close"], strict=True)
        }

    def is_session(self, day: date) -> bool:
        return day in self._times

    def times(self, day: date) -> SessionTimes:
        return self._times[day]

    def session_on_or_after(self, day: date) -> date:
        return self._sessions[bisect.bisect_left(self._sessions, day)]

    def session_on_or_before(self, day: date) -> date:
        return self._sessions[bisect.bisect_right(self._sessions, day) - 1]

    def window_ending(self, session: date, count: int) -> list[date]:
        """``count`` sessions ending with ``session`` (inclusive)."""
        index = bisect.bisect_left(self._sessions, session)
        return self._sessions[max(0, index - count + 1) : index + 1]

    def sessions_from(self, session: date, count: int) -> list[date]:
        index = bisect.bisect_left(self._sessions, session)
        return self._sessions[index : index + count]


@lru_cache(maxsize=1)
def xnys() -> MarketCalendar:
    """The shared calendar (loading it takes about a second)."""
    return MarketCalendar()


def trade_date(now: datetime) -> date:
    return now.astimezone(NY).date()


def pdt_session(now: datetime, calendar: MarketCalendar) -> date:
    """The session an order sent now trades in: today if a session, else the next one."""
    return calendar.session_on_or_after(trade_date(now))


@dataclass(frozen=True)
class ProductHours:
    is_open: bool
    session: date | None
    open_et: datetime | None
    close_et: datetime | None
    next_session: date
    next_open_et: datetime
    next_close_et: datetime


def _is_late_close(contracts: list[OptionContract], session: date, config: RulesConfig) -> bool:
    if not contracts:
        return False
    for contract in contracts:
        if contract.root.upper() not in config.late_close_products:
            return False
        if config.late_close_regular_close_on_expiry_day and contract.expiry == session:
            return False
    return True


def product_session(
    session: date, contracts: list[OptionContract], calendar: MarketCalendar, config: RulesConfig
) -> tuple[datetime, datetime]:
    """Open and close (New York time) of the product on a session. Early closes follow the calendar;
    late-close products trade 15 minutes (by default) past the exchange close."""
    times = calendar.times(session)
    open_et = times.open.astimezone(NY)
    close_et = times.close.astimezone(NY)
    regular_close = datetime.combine(session, config.session_close_et, NY)
    late = datetime.combine(session, config.late_close_et, NY) - regular_close
    if _is_late_close(contracts, session, config):
        close_et = close_et + late
    return open_et, close_et


def product_hours(
    now: datetime, contracts: list[OptionContract], calendar: MarketCalendar, config: RulesConfig
) -> ProductHours:
    """Whether the product's regular session is open now, and the next session otherwise."""
    local = now.astimezone(NY)
    today = local.date()
    if calendar.is_session(today):
        open_et, close_et = product_session(today, contracts, calendar, config)
        if open_et <= local < close_et:
            return ProductHours(True, today, open_et, close_et, today, open_et, close_et)
        if local < open_et:
            return ProductHours(False, today, open_et, close_et, today, open_et, close_et)
    nxt = calendar.session_on_or_after(today + timedelta(days=1))
    n_open, n_close = product_session(nxt, contracts, calendar, config)
    return ProductHours(False, None, None, None, nxt, n_open, n_close)


def in_ibkr_reset_window(now: datetime, config: RulesConfig) -> bool:
    """True inside a daily North America reset window or the Friday-night weekend reset."""
    local = now.astimezone(NY)
    clock = local.time()
    for start, end in config.ibkr_reset_windows_et:
        if start <= end:
            if start <= clock < end:
                return True
        elif clock >= start or clock < end:
            return True
    if config.ibkr_weekend_reset_et is not None:
        (start_day, start_time), (end_day, end_time) = config.ibkr_weekend_reset_et
        minute = local.weekday() * 1440 + clock.hour * 60 + clock.minute
        start_min = start_day * 1440 + start_time.hour * 60 + start_time.minute
        end_min = end_day * 1440 + end_time.hour * 60 + end_time.minute
        if start_min <= end_min:
            return start_min <= minute < end_min
        return minute >= start_min or minute < end_min
    return False
