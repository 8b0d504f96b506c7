"""When a Client Portal session ends, predicted from what is known (pure, no I/O).

A session lives at most 24 hours from the login, and the brokerage session ends at the first
midnight of the gateway's region (New York, Zug or Hong Kong) after it was opened, however often
it is tickled. The gateway's `ssoExpires` is not the time left of the login: it is a short sliding
value (REFERENCE.md 2.2: 1.5 to 10 minutes) that tickles extend. It says when the session ends only
once it stops being extended, i.e. when it counts down across tickles (`SsoCountdown`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

REGION_ZONES = {"us": "America/New_York", "eu": "Europe/Zurich", "asia": "Asia/Hong_Kong"}
MAX_SESSION_AGE = timedelta(hours=24)
#: Readings of one end (the first and two more tickles) before a countdown is believed.
SSO_TRUST_READINGS = 3
#: What the reply's travel time may move an implied end by, on top of half the time between readings.
SSO_JITTER = timedelta(milliseconds=250)


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


def predict_expiry(*, region: str, login_at: datetime, authenticated_at: datetime | None, now: datetime) -> Expiry:
    """min(login + 24 h, the next regional midnight after the brokerage session (re)opened).

    `authenticated_at` None means unknown (after a restart). A midnight that is already past while the
    session is seen authenticated was survived (the session was reopened since, e.g. by ssodh/init):
    the next midnight after `now` is the one that ends it.
    """
    reset = next_midnight(region, authenticated_at or now)
    if reset <= now:
        reset = next_midnight(region, now)
    candidates = [Expiry(login_at.astimezone(UTC) + MAX_SESSION_AGE, "max_age"), Expiry(reset, "regional_reset")]
    return min(candidates, key=lambda e: e.at)


@dataclass
class SsoCountdown:
    """Readings of `ssoExpires` within one session: the end they imply and whether it held.

    A sliding value moves its implied end (`now + ssoExpires`) later by about the time between two
    readings; a countdown keeps it where it is. Only an end that held across `SSO_TRUST_READINGS`
    readings (the gateway stopped extending the session) is `trusted`.
    """

    end: datetime | None = None
    read_at: datetime | None = None
    readings: int = 0

    def read(self, now: datetime, sso_expires_ms: int) -> None:
        """One reading at `now`; an end that moved since the last reading starts the count over."""
        implied = now.astimezone(UTC) + timedelta(milliseconds=sso_expires_ms)
        held = (
            self.end is not None and self.read_at is not None
            and abs(implied - self.end) <= (now - self.read_at) / 2 + SSO_JITTER
        )
        self.readings = self.readings + 1 if held else 1
        self.end, self.read_at = implied, now

    @property
    def trusted(self) -> datetime | None:
        """The end the gateway counts down to, once believed; None while it slides or is unknown."""
        return self.end if self.readings >= SSO_TRUST_READINGS else None
