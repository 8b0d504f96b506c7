"""The maintenance window table: default union of the published versions, configurable, DST-correct."""

from datetime import UTC, datetime

import pytest

from ibkr_session_keeper.windows import DEFAULT_WINDOWS, WindowTable, parse_windows


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def table(region: str, spec: str = DEFAULT_WINDOWS) -> WindowTable:
    return WindowTable(parse_windows(spec), region)


@pytest.mark.parametrize(
    ("region", "when", "inside"),
    [
        ("us", "2026-11-24T05:00", True),  # 00:00 New York (CPV1)
        ("us", "2026-11-24T06:00", True),  # 01:00 New York (WEBAPI)
        ("us", "2026-11-24T04:44", False),  # 23:44 New York
        ("us", "2026-11-24T06:45", False),  # 01:45 New York: the window has ended
        ("us", "2026-07-14T03:50", True),  # 23:50 EDT in summer
        ("us", "2026-11-24T15:00", False),
        ("eu", "2026-10-24T22:00", True),  # 00:00 Zug, CEST
        ("eu", "2026-10-25T23:00", True),  # 00:00 Zug, CET (after the change)
        ("eu", "2026-11-24T05:30", True),  # 06:30 CET, the status page's European reset
        ("eu", "2026-11-24T03:00", False),  # 04:00 Zug, 22:00 New York
        ("asia", "2026-11-24T16:00", True),  # 00:00 Hong Kong
        ("asia", "2026-11-24T12:30", True),  # 20:30 Hong Kong
        ("asia", "2026-11-24T09:00", False),
    ],
)
def test_default_windows_by_region(region: str, when: str, inside: bool) -> None:
    assert table(region).in_window(utc(when)) is inside


def test_the_weekend_reset_applies_to_every_region() -> None:
    saturday_2am_new_york = utc("2026-11-28T07:00")

    assert table("eu").in_window(saturday_2am_new_york)
    assert not table("eu").in_window(utc("2026-11-25T07:00"))  # the same time on a Wednesday


def test_active_window_tells_when_it_ends() -> None:
    active = table("us").active(utc("2026-11-24T05:10"))

    assert active is not None
    assert active.ends_at == utc("2026-11-24T06:45")
    assert active.label == "us daily 23:45-01:45 America/New_York"


def test_a_custom_table_replaces_the_default() -> None:
    custom = table("eu", "eu mon-fri 10:00-10:30 Europe/Zurich; * sat,sun 12:00-13:00 UTC")

    assert custom.in_window(utc("2026-11-24T09:15"))  # Tuesday 10:15 CET
    assert not custom.in_window(utc("2026-11-24T05:30"))
    assert custom.in_window(utc("2026-11-28T12:30"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mars daily 00:00-01:00 UTC", "region"),
        ("us daily 25:00-01:00 UTC", "HH:MM"),
        ("us someday 00:00-01:00 UTC", "days"),
        ("us daily 00:00-01:00 Mars/Olympus", "time zone"),
        ("us daily 00:00-01:00", "expected"),
    ],
)
def test_a_bad_row_is_refused_with_its_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_windows(spec)


@pytest.mark.parametrize("region", ["us", "eu", "asia"])
def test_the_sunday_token_reset_at_one_new_york_is_a_window_in_every_region(region: str) -> None:
    sunday_1am_new_york = utc("2026-11-29T06:00")  # 01:00 EST, Sunday 29 November

    assert table(region).in_window(sunday_1am_new_york)
    assert table(region).in_window(utc("2026-07-12T05:00"))  # 01:00 EDT on a summer Sunday
    if region == "asia":  # Hong Kong is at 14:00 then: nothing else of the table is open
        assert not table(region).in_window(utc("2026-11-25T06:00"))  # the same time on a Wednesday
