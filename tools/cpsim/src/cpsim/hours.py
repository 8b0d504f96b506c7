"""Exchange hours of US equities and options on the sim clock (America/New_York, Monday to Friday).

Regular trading hours are 09:30-16:00; an order flagged `outsideRTH` may also work in the extended
session 04:00-20:00. Outside them an order is accepted and rests `PreSubmitted` (REFERENCE section 6:
"accepted by IB, held ... before open") until the clock reaches the open. Exchange holidays and early
closes are not modelled (documented simplification).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
REGULAR = (time(9, 30), time(16, 0))
EXTENDED = (time(4, 0), time(20, 0))
MODES = ("exchange", "always")
ALIASES = {"rth": "exchange", "always_open": "always"}


def normalise_mode(mode: str) -> str:
    """`exchange` or `always` (accepts the older `rth` and `always_open` spellings); ValueError otherwise."""
    mode = ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"must be one of {', '.join(MODES)}")
    return mode


def _within(now: datetime, window: tuple[time, time]) -> bool:
    local = now.astimezone(NY)
    return local.weekday() < 5 and window[0] <= local.time() < window[1]


def is_open(mode: str, now: datetime, outside_rth: bool = False) -> bool:
    """Whether an order can work now: always in `always` mode, else within the session it may use."""
    if mode == "always":
        return True
    return _within(now, EXTENDED if outside_rth else REGULAR)


def next_open(now: datetime, window: tuple[time, time] = REGULAR) -> datetime:
    """The next start of `window` strictly after `now` (or `now` itself when it is open), in UTC."""
    if _within(now, window):
        return now
    local = now.astimezone(NY)
    day = local.date()
    for _ in range(8):
        start = datetime.combine(day, window[0], NY)
        if start > local and start.weekday() < 5:
            return start.astimezone(now.tzinfo)
        day += timedelta(days=1)
    raise AssertionError("unreachable: a weekday comes within 8 days")


def next_close(now: datetime, window: tuple[time, time] = REGULAR) -> datetime:
    """The end of the session that is open at `now`, or of the next one."""
    start = next_open(now, window).astimezone(NY)
    return datetime.combine(start.date(), window[1], NY).astimezone(now.tzinfo)


def describe(mode: str, now: datetime) -> dict[str, Any]:
    """What `GET /sim/market_hours` answers."""
    return {
        "mode": mode,
        "timezone": "America/New_York",
        "regular": [REGULAR[0].isoformat("minutes"), REGULAR[1].isoformat("minutes")],
        "extended": [EXTENDED[0].isoformat("minutes"), EXTENDED[1].isoformat("minutes")],
        "open": is_open(mode, now),
        "now": now.isoformat(),
        "next_open": None if mode == "always" else next_open(now).isoformat(),
        "next_close": None if mode == "always" else next_close(now).isoformat(),
    }
