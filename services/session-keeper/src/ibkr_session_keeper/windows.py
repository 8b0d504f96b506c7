"""Maintenance windows: when IBKR resets its servers, failures are expected (pure, no I/O).

A table row is `<region> <days> <HH:MM>-<HH:MM> <IANA zone>`; rows are separated by `;`.
`region` is us, eu, asia or `*` (every region); `days` is `daily`, a day (`fri`), a list (`sat,sun`)
or a range (`sun-thu`) naming the local day the window *starts*; an end at or before the start
means the next day. Times are wall-clock times of the zone, so DST is followed.

The default is the union of every published version (see the service README):
REFERENCE.md 2.3 (CPV1: midnight local; WEBAPI: 01:00 local), the two IBKR status pages of
RULES.md section 6, the Friday-night weekend reset and the Sunday 01:00 ET token invalidation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REGIONS = ("us", "eu", "asia")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DEFAULT_WINDOWS = "; ".join(
    [
        # North America: CPV1 00:00 ET and WEBAPI 01:00 ET; status pages 23:45-00:45 and 00:15-01:45 ET.
        "us daily 23:45-01:45 America/New_York",
        # Europe: CPV1 00:00 and WEBAPI 01:00 Zug time; status pages 05:45-06:45 and 06:25-07:45 CET.
        "eu daily 23:45-01:15 Europe/Zurich",
        "eu daily 05:45-07:45 Europe/Zurich",
        # Asia: CPV1 00:00 and WEBAPI 01:00 HKT; status pages 04:45-06:05 and 20:15-21:15 HKT,
        # and the older page's first Asian reset 16:45-17:45 ET.
        "asia daily 23:45-01:15 Asia/Hong_Kong",
        "asia daily 04:45-06:05 Asia/Hong_Kong",
        "asia daily 20:15-21:15 Asia/Hong_Kong",
        "asia daily 16:45-17:45 America/New_York",
        # Every region: the weekend reset Fri 23:00 ET - Sat 03:00 ET, and the weekly token
        # invalidation on Sunday 01:00 ET (a full login is needed afterwards).
        "* fri 23:00-03:00 America/New_York",
        "* sun 00:45-01:15 America/New_York",
    ]
)


@dataclass(frozen=True)
class Window:
    """One row of the table."""

    region: str
    days: frozenset[int]
    start: time
    end: time
    zone: str

    @property
    def label(self) -> str:
        """The row as written in the table (normalised)."""
        days = "daily" if len(self.days) == 7 else ",".join(DAYS[d] for d in sorted(self.days))
        return f"{self.region} {days} {self.start:%H:%M}-{self.end:%H:%M} {self.zone}"

    def occurrence(self, day: date) -> tuple[datetime, datetime] | None:
        """Start and end (UTC) of the window that starts on local `day`, if it runs that day."""
        if day.weekday() not in self.days:
            return None
        tz = ZoneInfo(self.zone)
        start = datetime.combine(day, self.start, tzinfo=tz)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        end = datetime.combine(end_day, self.end, tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class ActiveWindow:
    """A window the clock is in."""

    label: str
    started_at: datetime
    ends_at: datetime


class WindowTable:
    """The windows that apply to one gateway region."""

    def __init__(self, windows: list[Window], region: str) -> None:
        self.region = region
        self.windows = [w for w in windows if w.region in ("*", region)]

    def active(self, now: datetime) -> ActiveWindow | None:
        """The window `now` lies in (the one ending last when several overlap), or None."""
        found: ActiveWindow | None = None
        for window in self.windows:
            local = now.astimezone(ZoneInfo(window.zone)).date()
            for day in (local - timedelta(days=1), local):
                span = window.occurrence(day)
                if span and span[0] <= now < span[1] and (found is None or span[1] > found.ends_at):
                    found = ActiveWindow(window.label, span[0], span[1])
        return found

    def in_window(self, now: datetime) -> bool:
        """Whether `now` lies in a maintenance window."""
        return self.active(now) is not None


def _parse_days(text: str) -> frozenset[int]:
    if text == "daily":
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, last = (DAYS.index(p) for p in part.split("-", 1))
            days.update(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
        else:
            days.add(DAYS.index(part))
    return frozenset(days)


def _parse_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def parse_windows(spec: str) -> list[Window]:
    """Parse a window table; raise ValueError naming the bad row."""
    rows = [r.strip() for r in spec.replace("\n", ";").split(";") if r.strip()]
    windows = []
    for row in rows:
        parts = row.split()
        if len(parts) != 4:
            raise ValueError(f"window {row!r}: expected '<region> <days> <HH:MM>-<HH:MM> <zone>'")
        region, days, span, zone = parts
        if region not in (*REGIONS, "*"):
            raise ValueError(f"window {row!r}: region must be one of us, eu, asia, *")
        try:
            day_set = _parse_days(days.lower())
        except ValueError:
            raise ValueError(f"window {row!r}: days must be daily, mon..sun, a list or a range") from None
        try:
            start_text, end_text = span.split("-")
            start, end = _parse_time(start_text), _parse_time(end_text)
        except ValueError:
            raise ValueError(f"window {row!r}: times must be HH:MM-HH:MM") from None
        if start == end:
            raise ValueError(f"window {row!r}: start and end are equal")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"window {row!r}: unknown time zone {zone!r}") from None
        windows.append(Window(region, day_set, start, end, zone))
    return windows
