"""When a Client Portal session ends, predicted from what is known (pure, no I/O).

A session lives at most 24 hours from the login, and the brokerage session ends at the first
midnight of the gateway's region (New York, Zug or Hong Kong) after it was opened, however often
it is tickled. When the gateway reports `ssoExpires` (milliseconds left), that bound is used too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

REGION_ZONES = {"us": "America/New_York", "eu": "Europe/Zurich", "asia": "Asia/Hong_Kong"}
MAX_SESSION_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class Expiry:
    """The predicted end and which bound decided it (`max_age`, `regional_reset`, `sso_expires`)."""

    at: datetime
    basis: str


def next_midnight(region: str, after: datetime) -> datetime:
    """The first local midnight of `region` strictly after `after`, in UTC (DST-correct)."""
    zone = ZoneInfo(REGION_ZONES[region])
    local = after.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return midnight.astimezone(UTC)


def login_from_sso(now: datetime, sso_expires_ms: int) -> datetime:
    """The login time implied by `ssoExpires` when it counts down the 24-hour lifetime."""
    return now + timedelta(milliseconds=sso_expires_ms) - MAX_SESSION_AGE


def predict_expiry(
    *, region: str, login_at: datetime, authenticated_at: datetime, now: datetime,
    sso_expires_ms: int | None = None,
) -> Expiry:
    """min(login + 24 h, next regional midnight after the brokerage session opened, now + ssoExpires)."""
    candidates = []
    if sso_expires_ms is not None and sso_expires_ms > 0:  # first: the gateway's word wins a tie
        candidates.append(Expiry(now.astimezone(UTC) + timedelta(milliseconds=sso_expires_ms), "sso_expires"))
    candidates += [
        Expiry(login_at.astimezone(UTC) + MAX_SESSION_AGE, "max_age"),
        Expiry(next_midnight(region, authenticated_at), "regional_reset"),
    ]
    return min(candidates, key=lambda e: e.at)
