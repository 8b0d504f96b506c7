"""Rate limits of REFERENCE section 3: token buckets on the sim clock, the gateway's pacing and a penalty box.

Global pacing (REFERENCE section 3): IBKR's backend allows 50 req/s per username, and "requests through
the CP Gateway are limited to 10 req/s" -- the gateway paces what it forwards. cpsim models it so: the
global bucket holds 10 tokens refilled at 10/s; a call that finds it empty is held until the next token
(the gateway's pacing), so a client that waits for each answer is slowed to 10/s and never refused. A
true burst -- a call arriving while the bucket is empty and 10 or more calls are already in the gateway
(admitted, paced or being answered) -- is answered 429 with an empty body and puts the caller's address
in the penalty box (10 or 15 minutes, REFERENCE: CONFLICT; default 600 s). The per-endpoint table is
IBKR's published one and is not paced: a second live-orders call within 5 s is a 429 and a penalty, as
IBKR documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class TokenBucket:
    """`capacity` tokens, refilled at `rate` tokens per second."""

    rate: float
    capacity: float
    tokens: float = -1.0
    stamp: datetime | None = None

    def take(self, now: datetime) -> bool:
        """Consume one token if available."""
        if self.stamp is None or self.tokens < 0:
            self.tokens, self.stamp = self.capacity, now
        elapsed = (now - self.stamp).total_seconds()
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# (method or "*", path regex relative to /v1/api, requests, per seconds) -- IBKR's published table.
ENDPOINT_LIMITS: tuple[tuple[str, str, float, float], ...] = (
    ("GET", r"/iserver/marketdata/snapshot", 10, 1),
    ("GET", r"/iserver/account/orders", 1, 5),
    ("GET", r"/iserver/account/trades", 1, 5),
    ("GET", r"/iserver/account/pnl/partitioned", 1, 5),
    ("GET", r"/portfolio/accounts", 1, 5),
    ("GET", r"/portfolio/subaccounts", 1, 5),
    ("GET", r"/iserver/scanner/params", 1, 900),
    ("POST", r"/iserver/scanner/run", 1, 1),
    ("POST", r"/pa/(performance|summary|transactions)", 1, 900),
    ("*", r"/fyi/.*", 1, 1),
    ("*", r"/tickle", 1, 1),
    ("GET", r"/sso/validate", 1, 60),
)
GLOBAL_RATE = 10.0
_COMPILED = [(m, re.compile(p + r"$"), n, per) for m, p, n, per in ENDPOINT_LIMITS]


def endpoint_rule(method: str, path: str) -> tuple[str, float, float] | None:
    """The per-endpoint rule (key, requests, seconds) that applies to a call, if any."""
    for m, rx, n, per in _COMPILED:
        if (m == "*" or m == method) and rx.match(path):
            return (f"{m} {rx.pattern}" if not rx.pattern.startswith("/fyi") else f"{method} {path}", n, per)
    return None


@dataclass
class Pacer:
    """The gateway's global pacing: a 10-token bucket whose deficit is a queue (see the module docstring)."""

    rate: float = GLOBAL_RATE
    capacity: float = GLOBAL_RATE
    tokens: float = GLOBAL_RATE
    stamp: datetime | None = None
    in_flight: int = 0  # calls admitted and not yet answered (paced ones included)
    paced: int = 0  # calls that were held for a token

    def admit(self, now: datetime) -> float | None:
        """Seconds the call waits for its token (0: none), or None for a burst (429)."""
        if self.stamp is not None:
            elapsed = (now - self.stamp).total_seconds()
            if elapsed > 0:
                self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens < 1 and self.in_flight >= self.capacity:
            return None
        self.tokens -= 1
        if self.tokens >= 0:
            return 0.0
        self.paced += 1
        return -self.tokens / self.rate

    def refund(self) -> None:
        """Give back the token of a call refused after it was taken."""
        self.tokens = min(self.capacity, self.tokens + 1)


@dataclass
class RateLimiter:
    """The gateway's 10 req/s pacing plus the per-endpoint table; a violation puts the caller in the penalty box.

    `admit` decides a call (a wait in seconds, or None for 429) and counts it in flight until `release`.
    """

    enabled: bool = True
    penalty_s: float = 600.0
    pacer: Pacer = field(default_factory=Pacer)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    penalty_until: dict[str, datetime] = field(default_factory=dict)
    violations: int = 0

    def admit(self, method: str, path: str, now: datetime, client: str = "") -> float | None:
        """Whether a call to `path` (relative to /v1/api) may proceed: seconds to hold it, or None (429).

        An admitted call is in flight until `release()`; a refused one is not.
        """
        if not self.enabled:
            self.pacer.in_flight += 1
            return 0.0
        until = self.penalty_until.get(client)
        if until is not None:
            if now < until:
                return None
            del self.penalty_until[client]
        wait = self.pacer.admit(now)
        rule = endpoint_rule(method, path)
        ok = wait is not None
        if ok and rule is not None:
            key, n, per = rule
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(n / per, n)
            ok = bucket.take(now)
            if not ok:
                self.pacer.refund()
        if not ok:
            self.violations += 1
            if self.penalty_s > 0:
                self.penalty_until[client] = now + timedelta(seconds=self.penalty_s)
            return None
        self.pacer.in_flight += 1
        return wait

    def release(self) -> None:
        """An admitted call was answered."""
        self.pacer.in_flight = max(0, self.pacer.in_flight - 1)

    def clear(self) -> None:
        """Forget buckets and penalties (calls still in flight stay counted)."""
        in_flight = self.pacer.in_flight
        self.pacer = Pacer(in_flight=in_flight)
        self.buckets.clear()
        self.penalty_until.clear()
