"""Units of the exchange calendar (hours.py): holidays, early closes, the extended session, the cache file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cpsim import hours

# 2026: Independence Day falls on a Saturday, so the exchange closes on Friday 3 July (observed).
HOLIDAY_NOON = datetime(2026, 7, 3, 16, 0, tzinfo=UTC)  # 12:00 New York (EDT)
AFTER_HOLIDAY_OPEN = datetime(2026, 7, 6, 13, 30, tzinfo=UTC)  # Monday 09:30
# The day after Thanksgiving closes at 13:00 New York (EST).
EARLY_CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


def test_holidays_have_no_session_and_orders_wait_for_the_next_open() -> None:
    cal = hours.calendar()
    # New Year, Good Friday, Independence Day (observed), Thanksgiving, Christmas
    for day in (date(2026, 1, 1), date(2026, 4, 3), date(2026, 7, 3), date(2026, 11, 26), date(2026, 12, 25)):
        assert not cal.is_session(day), day
    assert cal.is_session(date(2026, 7, 2)) and cal.is_session(date(2026, 7, 6))
    assert not hours.is_open("exchange", HOLIDAY_NOON)
    assert not hours.is_open("exchange", HOLIDAY_NOON, outside_rth=True)  # no extended session either
    assert hours.is_open("always", HOLIDAY_NOON)
    assert hours.next_open(HOLIDAY_NOON) == AFTER_HOLIDAY_OPEN
    assert hours.next_open(HOLIDAY_NOON, outside_rth=True) == datetime(2026, 7, 6, 8, 0, tzinfo=UTC)  # 04:00
    assert hours.next_close(HOLIDAY_NOON) == datetime(2026, 7, 6, 20, 0, tzinfo=UTC)  # 16:00


def test_an_early_close_ends_the_session_at_13_00_and_the_extended_one_at_17_00() -> None:
    session = hours.calendar().session(EARLY_CLOSE.replace(hour=15))
    assert session.day == date(2026, 11, 27) and session.early_close
    assert session.close == EARLY_CLOSE
    assert hours.is_open("exchange", datetime(2026, 11, 27, 17, 59, tzinfo=UTC))
    assert not hours.is_open("exchange", EARLY_CLOSE)
    assert hours.next_close(datetime(2026, 11, 27, 15, 0, tzinfo=UTC)) == EARLY_CLOSE
    assert hours.next_open(EARLY_CLOSE) == datetime(2026, 11, 30, 14, 30, tzinfo=UTC)  # Monday 09:30
    assert hours.is_open("exchange", datetime(2026, 11, 27, 21, 59, tzinfo=UTC), outside_rth=True)  # 16:59
    assert not hours.is_open("exchange", datetime(2026, 11, 27, 22, 0, tzinfo=UTC), outside_rth=True)  # 17:00
    ordinary = hours.calendar().session(datetime(2026, 11, 30, 15, 0, tzinfo=UTC))
    assert not ordinary.early_close and ordinary.window(outside_rth=True)[1] == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def test_describe_names_the_session_and_its_early_close() -> None:
    got = hours.describe("exchange", datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    assert (got["open"], got["session"], got["early_close"]) == (True, "2026-11-27", True)
    assert got["next_close"] == EARLY_CLOSE.isoformat()
    assert hours.describe("always", HOLIDAY_NOON)["session"] is None


def test_the_calendar_ends_where_the_sim_clock_does() -> None:
    cal = hours.calendar()
    assert cal.first <= date(1971, 1, 1) and cal.last > date(2200, 1, 14)
    with pytest.raises(ValueError, match="outside the exchange calendar"):
        cal.session(datetime(2300, 1, 1, tzinfo=UTC))


def test_the_cache_file_holds_what_the_library_says() -> None:
    library = hours.Calendar.from_library()
    again = hours.Calendar.from_json(json.loads(json.dumps(library.to_json())))
    assert (again.first, again.last, again.holidays, again.opens, again.closes) == (
        library.first, library.last, library.holidays, library.opens, library.closes)
    assert len(library.holidays) > 2000 and len(library.closes) > 400


def test_a_second_process_reads_the_cache_without_importing_pandas(tmp_path: Path) -> None:
    probe = ("import sys; from datetime import datetime, UTC; from cpsim import hours; "
             "s = hours.calendar().session(datetime(2026, 11, 27, 15, tzinfo=UTC)); "
             "print('pandas' in sys.modules, s.close.isoformat())")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}

    def run() -> str:
        return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                              check=True, timeout=120).stdout.strip()

    assert run() == "True 2026-11-27T18:00:00+00:00"  # read from the library, which imports pandas
    assert list((tmp_path / "cpsim").glob("xnys-*.json"))
    assert run() == "False 2026-11-27T18:00:00+00:00"  # read from the cache
