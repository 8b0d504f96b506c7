"""The limiter's arithmetic with an injected clock, and its queue order with a fake-time loop."""

from __future__ import annotations

import asyncio

import pytest

from ibkr_gateway_bridge.limiter import LimiterCore, PriorityLimiter, RateLimited, rule_for


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_global_bucket_passes_a_gateway_bucket_even_with_jitter() -> None:
    """What we send at 10/s must fit IBKR's bucket (10 tokens, 10/s) even when arrivals jitter by 200 ms."""
    import random

    rng = random.Random(7)
    core = LimiterCore(rps=10, start=0.0)
    t, sent = 0.0, []
    while t < 60:
        if core.global_delay(t) <= 0:
            core.take("GET /x", t)
            sent.append(t)
        t = round(t + 0.001, 3)
    assert len(sent) / 60 >= 9.5  # throughput >= 95 % of the limit
    arrivals = sorted(s + rng.uniform(0, 0.2) for s in sent)
    tokens, stamp, rejected = 10.0, 0.0, 0
    for a in arrivals:
        tokens = min(10.0, tokens + (a - stamp) * 10)
        stamp = a
        if tokens >= 1:
            tokens -= 1
        else:
            rejected += 1
    assert rejected == 0


def test_spaced_endpoint_waits_after_the_previous_call_finished() -> None:
    core = LimiterCore(rps=10, start=0.0)
    key = "GET /iserver/account/orders"
    assert core.endpoint_delay(key, 0.0) == 0
    core.take(key, 0.0)
    assert core.endpoint_delay(key, 1.0) == float("inf")  # in flight
    core.done(key, 2.0)
    assert core.endpoint_delay(key, 2.0) == pytest.approx(5.05)
    assert core.endpoint_delay(key, 7.1) == 0


def test_concurrency_rule_and_unlisted_endpoints() -> None:
    core = LimiterCore(rps=10, start=0.0)
    key = "GET /iserver/marketdata/history"
    for _ in range(5):
        core.take(key, 0.0)
    assert core.endpoint_delay(key, 0.0) == float("inf")
    core.done(key, 0.1)
    assert core.endpoint_delay(key, 0.1) == 0
    assert core.endpoint_delay("GET /iserver/secdef/search", 0.0) == 0
    assert rule_for("GET /fyi/unreadnumber") is not None
    assert rule_for("GET /iserver/accounts") is None


def test_penalty_box_expires() -> None:
    core = LimiterCore(rps=10, start=0.0)
    core.penalize("GET /x", 10.0, 600)
    assert core.penalty_remaining("GET /x", 11.0) == pytest.approx(599)
    assert core.penalty_remaining("GET /y", 11.0) == 0
    assert core.penalty_remaining("GET /x", 611.0) == 0


async def test_priority_order_under_contention() -> None:
    limiter = PriorityLimiter(rps=2)  # burst 1, then one grant every ~0.51 s
    order: list[str] = []

    async def ask(name: str, priority: str) -> None:
        await limiter.acquire("GET /x", priority)
        order.append(name)
        limiter.release("GET /x")

    await ask("first", "sync")  # takes the burst token
    tasks = [asyncio.create_task(ask("sync", "sync")), asyncio.create_task(ask("account", "account"))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(ask("order", "order")))
    await asyncio.gather(*tasks)
    assert order == ["first", "order", "account", "sync"]


async def test_blocked_endpoint_does_not_block_other_requests() -> None:
    limiter = PriorityLimiter(rps=50)
    await limiter.acquire("GET /iserver/account/orders", "order")
    limiter.release("GET /iserver/account/orders")
    blocked = asyncio.create_task(limiter.acquire("GET /iserver/account/orders", "order"))
    await asyncio.sleep(0.01)
    waited = await asyncio.wait_for(limiter.acquire("GET /iserver/accounts", "sync"), 1)
    assert waited < 0.5 and not blocked.done()
    blocked.cancel()


async def test_queue_timeout_and_penalty_raise_rate_limited() -> None:
    clock = FakeClock()
    limiter = PriorityLimiter(rps=10, clock=clock, penalty_s=600)
    limiter.penalize("GET /iserver/account/trades")
    with pytest.raises(RateLimited) as info:
        await limiter.acquire("GET /iserver/account/trades", "order")
    assert info.value.retry_after_s == pytest.approx(600)
    clock.t += 601
    await limiter.acquire("GET /iserver/account/trades", "order")  # out of the box again
    with pytest.raises(RateLimited):
        await limiter.acquire("GET /iserver/account/trades", "order", max_wait_s=0.05)  # in flight
    assert limiter.waiting == 0
