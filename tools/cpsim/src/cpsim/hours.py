"""Exchange hours of US equities and options on the sim clock: the NYSE calendar (XNYS of `exchange_calendars`).

Regular trading hours are 09:30-16:00 America/New_York on the exchange's sessions: no session on a
weekend or an exchange holiday, and an early close (13:00, e.g. the day after Thanksgiving or Christmas
Eve) ends the session early. An order flagged `outsideRTH` may also work in the extended session of a
trading day, from 04:00 until four hours after the close (20:00; 17:00 after an early close, when the
post-market ends early too: a stated assumption, the calendar only knows the regular session). Outside
them an order is accepted and rests `PreSubmitted` (REFERENCE section 6: "accepted by IB, held ...
before open") until the clock reaches the open.

The calendar is loaded once per process and only when the exchange mode first needs it; `always` mode never
loads it. Reading it from the library imports pandas (two to three seconds, about 55 MB), so what it says (the
few thousand holidays, early closes and late opens) is kept in a cache file per library version and later
loads read that (milliseconds, no pandas). `warm_up` loads it in a background thread at start-up so the first
order does not wait.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
REGULAR = (time(9, 30), time(16, 0))
EXTENDED = (time(4, 0), time(20, 0))
#: The post-market session ends this long after the regular close (20:00, or 17:00 after an early close).
POST_MARKET = timedelta(hours=4)
MODES = ("exchange", "always")
ALIASES = {"rth": "exchange", "always_open": "always"}
#: The calendar covers every time the sim clock accepts (the years 1971-2199, web.sim_time) with a margin,
#: so the session after any such time is known.
CALENDAR_SPAN = ("1970-12-01", "2210-01-31")
CACHE_FORMAT = 1


def normalise_mode(mode: str) -> str:
    """`exchange` or `always` (accepts the older `rth` and `always_open` spellings); ValueError otherwise."""
    mode = ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"must be one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class Session:
    """One trading day of the exchange: its regular open and close (tz-aware UTC)."""

    day: date
    open: datetime
    close: datetime

    @property
    def early_close(self) -> bool:
        """The regular session ends before 16:00 New York."""
        return self.close.astimezone(NY).time() < REGULAR[1]

    def window(self, outside_rth: bool = False) -> tuple[datetime, datetime]:
        """When an order may work this day: the regular session, or the extended one with `outsideRTH`."""
        if not outside_rth:
            return self.open, self.close
        return datetime.combine(self.day, EXTENDED[0], NY).astimezone(UTC), self.close + POST_MARKET


class Calendar:
    """The XNYS sessions, kept as the exceptions to "every weekday, 09:30-16:00": holidays, early closes and
    late opens (a few thousand dates)."""

    def __init__(
        self, first: date, last: date, holidays: frozenset[date], opens: dict[date, datetime],
        closes: dict[date, datetime],
    ) -> None:
        self.first, self.last, self.holidays, self.opens, self.closes = first, last, holidays, opens, closes

    @classmethod
    def from_library(cls) -> Calendar:
        """Read XNYS from `exchange_calendars` (imports pandas: seconds, and tens of MB for good)."""
        import exchange_calendars as xcals  # here, not at the top: see the module docstring

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas deprecation noise inside exchange_calendars
            cal = xcals.get_calendar("XNYS", start=CALENDAR_SPAN[0], end=CALENDAR_SPAN[1])
        sessions = set(cal.sessions.date)
        first, last = cal.first_session.date(), cal.last_session.date()
        days = (first + timedelta(days=n) for n in range((last - first).days + 1))
        return cls(
            first,
            last,
            frozenset(d for d in days if d.weekday() < 5 and d not in sessions),
            {ts.date(): cal.session_open(ts).to_pydatetime().astimezone(UTC) for ts in cal.late_opens},
            {ts.date(): cal.session_close(ts).to_pydatetime().astimezone(UTC) for ts in cal.early_closes},
        )

    def to_json(self) -> dict[str, Any]:
        """The calendar as plain JSON (the cache file)."""
        return {
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "opens": {d.isoformat(): t.isoformat() for d, t in sorted(self.opens.items())},
            "closes": {d.isoformat(): t.isoformat() for d, t in sorted(self.closes.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calendar:
        """The inverse of `to_json`."""
        return cls(
            date.fromisoformat(data["first"]),
            date.fromisoformat(data["last"]),
            frozenset(date.fromisoformat(d) for d in data["holidays"]),
            {date.fromisoformat(d): datetime.fromisoformat(t) for d, t in data["opens"].items()},
            {date.fromisoformat(d): datetime.fromisoformat(t) for d, t in data["closes"].items()},
        )

    def is_session(self, day: date) -> bool:
        """Whether the exchange trades on `day`."""
        return day.weekday() < 5 and day not in self.holidays

    def on(self, day: date) -> Session:
        """The session of a trading day (`is_session(day)` must hold)."""
        regular_open = datetime.combine(day, REGULAR[0], NY).astimezone(UTC)
        regular_close = datetime.combine(day, REGULAR[1], NY).astimezone(UTC)
        return Session(day, self.opens.get(day, regular_open), self.closes.get(day, regular_close))

    def session(self, now: datetime, outside_rth: bool = False) -> Session:
        """The session in which an order placed at `now` works: the one open now, else the next one."""
        day = now.astimezone(NY).date()
        if not self.first <= day < self.last - timedelta(days=14):
            raise ValueError(f"{now.isoformat()} is outside the exchange calendar ({self.first} to {self.last})")
        while True:
            if self.is_session(day):
                found = self.on(day)
                if now < found.window(outside_rth)[1]:
                    return found
            day += timedelta(days=1)


def cache_path() -> Path | None:
    """Where the calendar read from the library is kept: `$XDG_CACHE_HOME/cpsim` (default `~/.cache/cpsim`),
    one file per `exchange_calendars` version, so a release with a new holiday is read again. None without a
    home folder (nothing is cached then)."""
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except (RuntimeError, KeyError):  # no HOME and no password entry
        return None
    span = "_".join(CALENDAR_SPAN)
    return base / "cpsim" / f"xnys-{version('exchange-calendars')}-{span}-v{CACHE_FORMAT}.json"


_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _load() -> Calendar:
    path = cache_path()
    if path is None:
        return Calendar.from_library()
    try:
        return Calendar.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no cache yet (or an unreadable one): read the library
    cal = Calendar.from_library()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(cal.to_json()))
        temporary.replace(path)  # atomic: a concurrent reader sees the whole file or none
    except OSError:
        pass  # a read-only home: the next process reads the library again
    return cal


def calendar() -> Calendar:
    """The process's one calendar, loaded on first use (every gateway of the process shares it): from the cache
    file when there is one (milliseconds, no pandas), else from `exchange_calendars` (then cached)."""
    with _LOCK:
        return _load()


def warm_up() -> threading.Thread:
    """Load the calendar in a background thread (at start-up in exchange mode, so no request waits)."""
    thread = threading.Thread(target=calendar, name="cpsim-calendar", daemon=True)
    thread.start()
    return thread


def is_open(mode: str, now: datetime, outside_rth: bool = False) -> bool:
    """Whether an order can work now: always in `always` mode, else within the session it may use."""
    if mode == "always":
        return True
    return calendar().session(now, outside_rth).window(outside_rth)[0] <= now


def next_open(now: datetime, outside_rth: bool = False) -> datetime:
    """The next start of the (regular, or extended) session after `now`, or `now` itself when it is open."""
    start = calendar().session(now, outside_rth).window(outside_rth)[0]
    return max(start, now).astimezone(now.tzinfo)


def next_close(now: datetime, outside_rth: bool = False) -> datetime:
    """The end of the session that is open at `now`, or of the next one (13:00 New York on an early close)."""
    return calendar().session(now, outside_rth).window(outside_rth)[1].astimezone(now.tzinfo)


def describe(mode: str, now: datetime) -> dict[str, Any]:
    """What `GET /sim/market_hours` answers (the calendar is not consulted in `always` mode)."""
    out: dict[str, Any] = {
        "mode": mode,
        "timezone": "America/New_York",
        "calendar": "XNYS",
        "regular": [REGULAR[0].isoformat("minutes"), REGULAR[1].isoformat("minutes")],
        "extended": [EXTENDED[0].isoformat("minutes"), EXTENDED[1].isoformat("minutes")],
        "open": is_open(mode, now),
        "now": now.isoformat(),
        "next_open": None,
        "next_close": None,
        "session": None,
        "early_close": None,
    }
    if mode == "exchange":
        session = calendar().session(now)
        out.update(
            next_open=next_open(now).isoformat(),
            next_close=next_close(now).isoformat(),
            session=session.day.isoformat(),
            early_close=session.early_close,
        )
    return out
