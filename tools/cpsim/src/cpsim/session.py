"""The gateway's session state machine: SSO (read-only) login, brokerage session, expiry, pre-flights."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass
class Preflight:
    """What the client has already asked in this brokerage session (IBKR's pre-flight gates)."""

    accounts_queried: bool = False  # GET /iserver/accounts
    searched: set[int] = field(default_factory=set)  # underlyings passed through secdef/search
    snapshot_seen: set[int] = field(default_factory=set)  # conids whose snapshot stream started
    pnl_seen: bool = False  # first pnl/partitioned answers {"upnl": {}}


@dataclass
class Session:
    """States: no session (401) / read-only (SSO only: /iserver says `no bridge`) / brokerage; plus competing.

    Expiry, all measured on the sim clock:
    - idle: no request for `idle_timeout_s` ends the whole session (then 401 until /sim/login);
    - max age: `max_session_age_s` after login the whole session ends;
    - SSO token: it lives `sso_lifetime_s` (at least the idle timeout) and only /tickle and
      /sso/validate extend it; a session whose token lapsed ends (other requests keep only the idle timer);
    - regional reset: crossing local midnight of the region's zone ends the brokerage session only
      (read-only stays: `connected: true, authenticated: false`; ssodh/init opens it again).
    `ssoExpires` / `EXPIRES` count down to the first of those ends of the whole session (`sso_end`).
    """

    tz: str = "America/New_York"
    idle_timeout_s: float = 300.0
    max_age_s: float = 86400.0
    sso_lifetime_s: float = 600.0
    sso: bool = False
    brokerage: bool = False
    competing: bool = False
    login_at: datetime | None = None
    brokerage_at: datetime | None = None
    last_request: datetime | None = None
    sso_until: datetime | None = None
    ended_reason: str = ""
    session_id: str = ""
    preflight: Preflight = field(default_factory=Preflight)
    suppressed: set[str] = field(default_factory=set)
    portfolio_queried: bool = False  # GET /portfolio/accounts or /portfolio/subaccounts (per login)

    def login(self, now: datetime, brokerage: bool = True) -> None:
        """The browser login succeeded; the gateway opens the brokerage session by itself."""
        self.sso, self.competing, self.login_at, self.last_request = True, False, now, now
        self.refresh_sso(now)
        self.session_id = secrets.token_hex(16)
        self.ended_reason = ""
        self.brokerage = self.portfolio_queried = False
        if brokerage:
            self.start_brokerage(now)
        else:
            self._clear_brokerage_state()

    def logout(self, reason: str = "logout") -> None:
        """The whole session ends (SSO and brokerage)."""
        self.sso = self.brokerage = self.competing = self.portfolio_queried = False
        self.sso_until = None
        self.ended_reason = reason
        self._clear_brokerage_state()

    def start_brokerage(self, now: datetime) -> None:
        """ssodh/init (or reauthenticate) opened the brokerage session; pre-flights start over."""
        self.brokerage, self.competing, self.brokerage_at = True, False, now
        self._clear_brokerage_state()

    def end_brokerage(self, reason: str) -> None:
        """The brokerage session ends; the read-only session stays."""
        self.brokerage = False
        self.ended_reason = reason
        self._clear_brokerage_state()

    def set_competing(self, competing: bool) -> None:
        """Another platform took (or gave back) the brokerage session of this username."""
        self.competing = competing
        if competing:
            self._clear_brokerage_state()

    def _clear_brokerage_state(self) -> None:
        self.preflight = Preflight()
        self.suppressed = set()

    # ---- time ----------------------------------------------------------------------------------

    def expire(self, now: datetime) -> None:
        """Apply idle timeout, max age and the regional reset as of `now`."""
        if not self.sso:
            return
        if self.last_request is not None and (now - self.last_request).total_seconds() >= self.idle_timeout_s:
            self.logout("idle timeout")
            return
        if self.login_at is not None and (now - self.login_at).total_seconds() >= self.max_age_s:
            self.logout("max session age")
            return
        if self.sso_until is not None and now >= self.sso_until:
            self.logout("sso expired")
            return
        if self.brokerage and self.brokerage_at is not None and self.crossed_reset(self.brokerage_at, now):
            self.end_brokerage("regional reset")

    def crossed_reset(self, since: datetime, now: datetime) -> bool:
        """Whether local midnight of the region lies in (since, now]."""
        zone = ZoneInfo(self.tz)
        return now.astimezone(zone).date() > since.astimezone(zone).date()

    def next_reset(self, now: datetime) -> datetime:
        """The next regional midnight after `now` (UTC-aware)."""
        zone = ZoneInfo(self.tz)
        local = now.astimezone(zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        return midnight.astimezone(now.tzinfo)

    def touch(self, now: datetime) -> None:
        """A request arrived: the idle timer starts over."""
        if self.sso:
            self.last_request = now

    @property
    def sso_lifetime(self) -> timedelta:
        """How long the SSO token lives after a tickle or validate (never shorter than the idle timeout)."""
        return timedelta(seconds=max(self.sso_lifetime_s, self.idle_timeout_s))

    def refresh_sso(self, now: datetime) -> None:
        """/tickle or /sso/validate: the SSO token slides to `now + sso_lifetime`, never past the 24 h cap."""
        if not self.sso:
            return
        until = now + self.sso_lifetime
        if self.login_at is not None:
            until = min(until, self.login_at + timedelta(seconds=self.max_age_s))
        self.sso_until = until

    def sso_end(self, now: datetime) -> datetime | None:
        """When the whole session ends if nothing but the clock moves: token lapse, idle end or 24 h cap."""
        if not self.sso:
            return None
        ends = [now + self.sso_lifetime]  # a clock moved backwards never makes it longer than one lifetime
        if self.sso_until is not None:
            ends.append(self.sso_until)
        if self.last_request is not None:
            ends.append(self.last_request + timedelta(seconds=self.idle_timeout_s))
        if self.login_at is not None:
            ends.append(self.login_at + timedelta(seconds=self.max_age_s))
        return min(ends)

    def sso_expires_ms(self, now: datetime) -> int:
        """Milliseconds until `sso_end`: tickle's `ssoExpires` and sso/validate's `EXPIRES`."""
        end = self.sso_end(now)
        if end is None:
            return 0
        return max(0, int((end - now).total_seconds() * 1000))

    # ---- flags ---------------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        """IBKR's `authenticated`: the brokerage session is usable."""
        return self.sso and self.brokerage and not self.competing

    @property
    def connected(self) -> bool:
        """IBKR's `connected`: the gateway holds a session with the backend."""
        return self.sso
