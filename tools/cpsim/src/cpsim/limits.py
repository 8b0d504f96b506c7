"""Rate limits of REFERENCE section 3: token buckets on the sim clock and a penalty box."""

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
class RateLimiter:
    """10 req/s global plus the per-endpoint table; a violation puts the caller in the penalty box."""

    enabled: bool = True
    penalty_s: float = 600.0
    global_bucket: TokenBucket = field(default_factory=lambda: TokenBucket(GLOBAL_RATE, GLOBAL_RATE))
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    penalty_until: dict[str, datetime] = field(default_factory=dict)
    violations: int = 0

    def allow(self, method: str, path: str, now: datetime, client: str = "") -> bool:
        """Whether a call to `path` (relative to /v1/api) may proceed; False means answer 429."""
        if not self.enabled:
            return True
        until = self.penalty_until.get(client)
        if until is not None:
            if now < until:
                return False
            del self.penalty_until[client]
        ok = self.global_bucket.take(now)
        rule = endpoint_rule(method, path)
        if ok and rule is not None:
            key, n, per = rule
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = TokenBucket(n / per, n)
            ok = bucket.take(now)
        if not ok:
            self.violations += 1
            if self.penalty_s > 0:
                self.penalty_until[client] = now + timedelta(seconds=self.penalty_s)
        return ok

    def clear(self) -> None:
        """Forget buckets and penalties."""
        self.global_bucket = TokenBucket(GLOBAL_RATE, GLOBAL_RATE)
        self.buckets.clear()
        self.penalty_until.clear()
