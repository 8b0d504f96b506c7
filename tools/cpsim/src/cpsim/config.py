"""Simulator configuration: every knob in one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

MARKET_HOURS = ("exchange", "always")
REGION_TZ: dict[str, str] = {"us": "America/New_York", "eu": "Europe/Zurich", "asia": "Asia/Hong_Kong"}


@dataclass(frozen=True)
class SimConfig:
    """Settings of one simulator instance.

    host/port/https: where and how it listens (HTTPS with a self-signed certificate by default).
    seed: seeds the market's random walk and the generated ids, so runs are reproducible.
    region: the login region whose local midnight ends the brokerage session (us, eu, asia).
    idle_timeout_s: a session with no request for this long (sim clock) ends (IBKR: about 5 min).
    max_session_age_s: the hard cap on a login (IBKR: 24 h).
    penalty_s: how long a rate-limit violator stays in the penalty box (IBKR: 10 or 15 min).
    positions_cache_s: how long /portfolio/{id}/positions serves a cached snapshot (invalidate clears it).
    partial_fill_threshold: orders larger than this fill in chunks of this size, one chunk per sim second.
    price_constraint_pct: a limit price further than this from the last price asks question o163.
    reply_ttl_s: a question's reply id expires after this long (sim clock).
    market_hours: "exchange" (the default, as a paper account trades: the NYSE sessions of the XNYS calendar,
        09:30-16:00 New York, none on holidays, 13:00 on early closes, on the sim clock; `outsideRTH` orders
        also 04:00 until four hours after the close; DAY orders expire at their session's close, `expiry.py`)
        or "always" (orders work around the clock, nothing expires). "rth" is the former name of "exchange".
        /sim/market_hours changes it at run time and /sim/reset brings this value back.
    walk: whether unpinned prices move on the seeded random walk (one step per sim second).
    latency: whether answers take the per-endpoint time of `latency.py` (on by default; off for benchmarks
        and tests that ask for speed); latency_scale multiplies it. /sim/latency changes both at run time.
    name: the gateway's name when one process serves several (`--gateway paper:5000 --gateway live:5001`).
    accounts: the accounts of the gateway's login (the first is selected); `/sim/reset` without `accounts`
        brings them back. username: the login's name (`sso/validate`); paper when every account is `D...`.
    """

    host: str = "127.0.0.1"
    port: int = 5000
    https: bool = True
    seed: int = 42
    region: str = "us"
    idle_timeout_s: float = 300.0
    max_session_age_s: float = 86400.0
    penalty_s: float = 600.0
    positions_cache_s: float = 60.0
    partial_fill_threshold: Decimal = Decimal(1000)
    price_constraint_pct: Decimal = Decimal(3)
    reply_ttl_s: float = 120.0
    market_hours: str = "exchange"
    walk: bool = True
    latency: bool = True
    latency_scale: float = 1.0
    name: str = "paper"
    accounts: tuple[str, ...] = ("DU1234567",)
    username: str = "paperuser1"
    request_log_size: int = 5000
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def paper(self) -> bool:
        """A paper login: every account is a `D...` (demo) account."""
        return all(a.startswith("D") for a in self.accounts)

    @property
    def timezone(self) -> str:
        """IANA zone of the region's nightly reset."""
        return REGION_TZ.get(self.region, REGION_TZ["us"])
