"""One rate limiter per gateway: a global token bucket, IBKR's per-endpoint limits, a priority
queue and a penalty box per endpoint.

`LimiterCore` is pure logic over an injected monotonic clock (seconds); `PriorityLimiter` is the
asyncio queue in front of it. Endpoint keys are `"<METHOD> <path template>"`.

The buckets are kept a little below IBKR's numbers so that jitter between our clock and the
gateway's never turns into a 429: the global bucket refills at 98% of the configured rate with a
burst of half a second, and a "one call per N seconds" endpoint waits N seconds after the previous
call *finished* (the gateway has certainly counted it by then).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ibkr_common.tasks import wait_event

PRIORITY_RANK: dict[str, int] = {"order": 0, "session": 0, "account": 1, "sync": 2}
RATE_SAFETY = 0.98
SPACING_MARGIN_S = 0.05


@dataclass(frozen=True)
class EndpointRule:
    """`requests` per `per_s` seconds, or at most `concurrent` calls in flight."""

    requests: int = 0
    per_s: float = 0.0
    concurrent: int = 0


#: REFERENCE.md section 3 (keys as the client's path templates).
ENDPOINT_RULES: dict[str, EndpointRule] = {
    "GET /iserver/marketdata/snapshot": EndpointRule(10, 1.0),
    "GET /iserver/marketdata/history": EndpointRule(concurrent=5),
    "GET /iserver/account/orders": EndpointRule(1, 5.0),
    "GET /iserver/account/trades": EndpointRule(1, 5.0),
    "GET /iserver/account/pnl/partitioned": EndpointRule(1, 5.0),
    "GET /portfolio/accounts": EndpointRule(1, 5.0),
    "GET /portfolio/subaccounts": EndpointRule(1, 5.0),
    "GET /iserver/scanner/params": EndpointRule(1, 900.0),
    "POST /iserver/scanner/run": EndpointRule(1, 1.0),
    "POST /pa/performance": EndpointRule(1, 900.0),
    "POST /pa/summary": EndpointRule(1, 900.0),
    "POST /pa/transactions": EndpointRule(1, 900.0),
    "POST /tickle": EndpointRule(1, 1.0),
    "GET /sso/validate": EndpointRule(1, 60.0),
}
FYI_RULE = EndpointRule(1, 1.0)


def rule_for(key: str) -> EndpointRule | None:
    """The per-endpoint rule of an endpoint key, if IBKR publishes one."""
    rule = ENDPOINT_RULES.get(key)
    if rule is None and key.split(" ", 1)[-1].startswith("/fyi/"):
        return FYI_RULE
    return rule


class RateLimited(Exception):
    """The endpoint is in the penalty box, or the queue wait would be too long."""

    def __init__(self, key: str, retry_after_s: float, reason: str) -> None:
        super().__init__(f"{key}: {reason} (retry after {retry_after_s:.1f} s)")
        self.key = key
        self.retry_after_s = retry_after_s
        self.reason = reason


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def delay(self, now: float) -> float:
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self.refill(now)
        self.tokens -= 1


@dataclass
class _EndpointState:
    rule: EndpointRule
    bucket: _Bucket | None = None
    in_flight: int = 0
    last_start: float = -math.inf
    last_done: float = -math.inf


@dataclass
class LimiterCore:
    """The bookkeeping: which endpoint may go when. Pure; the clock is passed in."""

    rps: float = 10.0
    start: float = 0.0
    global_bucket: _Bucket = field(init=False)
    endpoints: dict[str, _EndpointState] = field(default_factory=dict)
    penalty_until: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        capacity = max(1.0, self.rps / 2)
        self.global_bucket = _Bucket(self.rps * RATE_SAFETY, capacity, capacity, self.start)

    def _state(self, key: str) -> _EndpointState | None:
        state = self.endpoints.get(key)
        if state is None:
            rule = rule_for(key)
            if rule is None:
                return None
            state = _EndpointState(rule)
            if rule.requests > 1:
                capacity = max(1.0, rule.requests / 2)
                state.bucket = _Bucket(rule.requests / rule.per_s * RATE_SAFETY, capacity, capacity, self.start)
            self.endpoints[key] = state
        return state

    def penalty_remaining(self, key: str, now: float) -> float:
        """Seconds left in the penalty box for `key` (0 when free)."""
        until = self.penalty_until.get(key)
        if until is None:
            return 0.0
        if now >= until:
            del self.penalty_until[key]
            return 0.0
        return until - now

    def penalize(self, key: str, now: float, seconds: float) -> None:
        """A 429 came back from `key`: leave it alone for `seconds`."""
        self.penalty_until[key] = max(self.penalty_until.get(key, now), now + seconds)

    def endpoint_delay(self, key: str, now: float) -> float:
        """Seconds until the endpoint's own limit allows a call (inf while a spaced call is in flight)."""
        state = self._state(key)
        if state is None:
            return 0.0
        rule = state.rule
        if rule.concurrent:
            return 0.0 if state.in_flight < rule.concurrent else math.inf
        if state.bucket is not None:
            return state.bucket.delay(now)
        if state.in_flight:
            return math.inf
        ready = max(state.last_start, state.last_done) + rule.per_s + SPACING_MARGIN_S
        return max(0.0, ready - now)

    def global_delay(self, now: float) -> float:
        """Seconds until the global bucket has a token."""
        return self.global_bucket.delay(now)

    def take(self, key: str, now: float) -> None:
        """Record the start of a call."""
        self.global_bucket.take(now)
        state = self._state(key)
        if state is not None:
            state.in_flight += 1
            state.last_start = now
            if state.bucket is not None:
                state.bucket.take(now)

    def done(self, key: str, now: float) -> None:
        """Record the end of a call (answered or failed)."""
        state = self.endpoints.get(key)
        if state is not None:
            state.in_flight = max(0, state.in_flight - 1)
            state.last_done = now


@dataclass(order=True)
class _Waiter:
    rank: int
    seq: int
    key: str = field(compare=False)
    future: asyncio.Future[float] = field(compare=False)
    enqueued: float = field(compare=False)


class PriorityLimiter:
    """Requests wait here, highest priority first, until the global and endpoint limits allow them."""

    def __init__(
        self, rps: float = 10.0, *, clock: Callable[[], float] = time.monotonic,
        penalty_s: float = 600.0, max_wait_s: float = 20.0,
    ) -> None:
        self.clock = clock
        self.core = LimiterCore(rps=rps, start=clock())
        self.penalty_s = penalty_s
        self.max_wait_s = max_wait_s
        self._waiters: list[_Waiter] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.granted = 0

    @property
    def waiting(self) -> int:
        """Requests in the queue now."""
        return len(self._waiters)

    def check_penalty(self, key: str) -> None:
        """Raise RateLimited when `key` is in the penalty box."""
        remaining = self.core.penalty_remaining(key, self.clock())
        if remaining > 0:
            raise RateLimited(key, remaining, "endpoint in IBKR's penalty box after a 429")

    def penalize(self, key: str, seconds: float | None = None) -> float:
        """Put `key` in the penalty box and fail its waiters; returns the seconds imposed."""
        seconds = self.penalty_s if seconds is None else seconds
        self.core.penalize(key, self.clock(), seconds)
        for waiter in list(self._waiters):
            if waiter.key == key and not waiter.future.done():
                waiter.future.set_exception(RateLimited(key, seconds, "endpoint in IBKR's penalty box after a 429"))
        self._wake.set()
        return seconds

    async def acquire(self, key: str, priority: str, max_wait_s: float | None = None) -> float:
        """Wait for a slot for `key`; returns the seconds waited. Pair with `release(key)`."""
        self.check_penalty(key)
        now = self.clock()
        if not self._waiters and self.core.global_delay(now) <= 0 and self.core.endpoint_delay(key, now) <= 0:
            self.core.take(key, now)
            self.granted += 1
            return 0.0
        self._seq += 1
        loop = asyncio.get_running_loop()
        waiter = _Waiter(PRIORITY_RANK.get(priority, 1), self._seq, key, loop.create_future(), now)
        self._waiters.append(waiter)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        limit = self.max_wait_s if max_wait_s is None else max_wait_s
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), limit)
        except TimeoutError:
            if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
                return waiter.future.result()
            self._drop(waiter)
            raise RateLimited(key, self._estimate(key), f"waited {limit:.1f} s in the rate-limit queue") from None
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
                self.release(key)
            self._drop(waiter)
            raise

    def release(self, key: str) -> None:
        """The call that acquired `key` has finished."""
        self.core.done(key, self.clock())
        self._wake.set()

    def _drop(self, waiter: _Waiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        if not waiter.future.done():
            waiter.future.cancel()

    def _estimate(self, key: str) -> float:
        now = self.clock()
        delay = max(self.core.global_delay(now), self.core.endpoint_delay(key, now))
        ahead = sum(1 for w in self._waiters if w.key == key) + len(self._waiters) / max(self.core.rps, 1)
        return round(max(1.0, min(60.0, (delay if math.isfinite(delay) else 5.0) + ahead)), 1)

    def _pick(self, now: float) -> tuple[_Waiter | None, float]:
        """The waiter to grant now, or how long to sleep."""
        self._waiters = [w for w in self._waiters if not w.future.done()]
        self._waiters.sort()
        sleep = math.inf
        global_delay = self.core.global_delay(now)
        for waiter in self._waiters:
            delay = self.core.endpoint_delay(waiter.key, now)
            if delay <= 0:
                if global_delay <= 0:
                    return waiter, 0.0
                return None, global_delay
            sleep = min(sleep, delay)
        return None, sleep

    async def _run(self) -> None:
        while self._waiters:
            self._wake.clear()
            now = self.clock()
            waiter, sleep = self._pick(now)
            if waiter is not None:
                self.core.take(waiter.key, now)
                self.granted += 1
                self._waiters.remove(waiter)
                waiter.future.set_result(now - waiter.enqueued)
                continue
            if not self._waiters:
                break
            await wait_event(self._wake, None if math.isinf(sleep) else max(sleep, 0.001))
