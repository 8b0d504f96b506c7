"""expires_at = min(login + 24 h, next regional midnight after the session opened, now + ssoExpires)."""

from datetime import UTC, datetime, timedelta

import pytest

from ibkr_session_keeper.expiry import next_midnight, predict_expiry


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


def test_the_gateways_sso_expires_is_used_when_it_is_earlier() -> None:
    now = utc("2026-06-10T14:00")

    expiry = predict_expiry(region="eu", login_at=now, authenticated_at=now, now=now, sso_expires_ms=3_600_000)

    assert expiry.at == now + timedelta(hours=1)
    assert expiry.basis == "sso_expires"


def test_a_zero_sso_expires_is_ignored() -> None:
    now = utc("2026-06-10T14:00")

    expiry = predict_expiry(region="asia", login_at=now, authenticated_at=now, now=now, sso_expires_ms=0)

    assert expiry.basis == "regional_reset"
