"""expires_at = min(login + 24 h, next regional midnight after the session opened); ssoExpires only as a countdown."""

from datetime import UTC, datetime, timedelta

import pytest

from ibkr_session_keeper.expiry import SsoCountdown, next_midnight, predict_expiry


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("region", "after", "midnight"),
    [
        # New York: EDT (UTC-4) before the change of 2026-11-01, EST (UTC-5) after it.
        ("us", "2026-10-31T20:00", "2026-11-01T04:00"),
        ("us", "2026-11-01T12:00", "2026-11-02T05:00"),
        ("us", "2026-03-07T20:00", "2026-03-08T05:00"),
        ("us", "2026-03-08T12:00", "2026-03-09T04:00"),
        # Zug: CEST (UTC+2) before the change of 2026-10-25, CET (UTC+1) after it.
        ("eu", "2026-10-24T12:00", "2026-10-24T22:00"),
        ("eu", "2026-10-25T12:00", "2026-10-25T23:00"),
        # Hong Kong has no DST: always 16:00 UTC.
        ("asia", "2026-10-24T12:00", "2026-10-24T16:00"),
        ("asia", "2026-11-01T17:00", "2026-11-02T16:00"),
    ],
)
def test_next_regional_midnight_follows_the_regions_dst(region: str, after: str, midnight: str) -> None:
    assert next_midnight(region, utc(after)) == utc(midnight)


def test_regional_midnight_ends_a_session_opened_in_the_evening() -> None:
    login = utc("2026-10-31T20:00")  # 16:00 New York, the day before the DST change

    expiry = predict_expiry(region="us", login_at=login, authenticated_at=login, now=login)

    assert expiry.at == utc("2026-11-01T04:00")
    assert expiry.basis == "regional_reset"


def test_24_hours_after_login_wins_when_the_session_was_reopened_after_midnight() -> None:
    login = utc("2026-06-10T03:00")  # 23:00 New York
    reopened = utc("2026-06-10T04:30")  # 00:30 New York: ssodh/init after the reset

    expiry = predict_expiry(region="us", login_at=login, authenticated_at=reopened, now=reopened)

    assert expiry.at == login + timedelta(hours=24)
    assert expiry.basis == "max_age"


def test_a_midnight_already_past_is_never_the_end_the_session_was_reopened_since() -> None:
    login = utc("2026-11-25T01:00")  # 20:00 New York on the 24th; reopened after midnight, brokerage time unknown
    now = utc("2026-11-25T07:00")  # 02:00 New York

    stale = predict_expiry(region="us", login_at=login, authenticated_at=login, now=now)
    unknown = predict_expiry(region="us", login_at=login, authenticated_at=None, now=now)

    assert stale == unknown
    assert stale.at == login + timedelta(hours=24) and stale.basis == "max_age"


def test_with_the_brokerage_time_unknown_the_next_midnight_after_now_ends_it() -> None:
    login = utc("2026-11-25T05:10")  # 00:10 New York
    now = utc("2026-11-25T14:00")

    expiry = predict_expiry(region="us", login_at=login, authenticated_at=None, now=now)

    assert expiry.at == utc("2026-11-26T05:00") and expiry.basis == "regional_reset"


def test_a_sliding_sso_expires_is_never_trusted() -> None:
    now, countdown = utc("2026-06-10T14:00"), SsoCountdown()
    for minute in range(30):
        countdown.read(now + timedelta(minutes=minute), 300_000)  # extended by every tickle

    assert countdown.trusted is None and countdown.readings == 1


def test_an_sso_expires_counting_down_is_trusted_after_three_readings() -> None:
    end, countdown = utc("2026-06-10T14:05"), SsoCountdown()
    readings = []
    for seconds_left in (300, 240, 180):
        now = end - timedelta(seconds=seconds_left)
        countdown.read(now, seconds_left * 1000 - 120)  # the reply took 120 ms: jitter is tolerated
        readings.append(countdown.trusted)

    assert readings[:2] == [None, None]
    assert readings[2] is not None and abs(readings[2] - end) < timedelta(seconds=1)


def test_an_end_extended_again_is_no_longer_trusted() -> None:
    end, countdown = utc("2026-06-10T14:05"), SsoCountdown()
    for seconds_left in (300, 240, 180):
        countdown.read(end - timedelta(seconds=seconds_left), seconds_left * 1000)
    countdown.read(end - timedelta(seconds=120), 600_000)

    assert countdown.trusted is None
