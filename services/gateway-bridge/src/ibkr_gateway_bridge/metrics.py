"""The bridge's figures for operators: every Client Portal call, the rate limiter, the gateway's state.

Calls are counted from the `CallRecord` each one leaves (by endpoint template, never the filled
path, so no account number becomes a label). The limiter's queue and penalty box and the gateway's
last known state are read when Prometheus scrapes. The gateway's state is also in the health and
readiness bodies, and never makes the bridge not ready: the stack comes up before anyone logs in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faststream import FastStream
from faststream.nats import NatsBroker
from prometheus_client import Counter, Histogram

from ibkr_common.ops import Observability, observe
from ibkr_gateway_bridge.client.gateway import CallRecord, Gateway
from ibkr_gateway_bridge.settings import BridgeSettings

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


class GatewayMetrics:
    """Counts calls from their records; reads the limiter and the gateway's state at each scrape."""

    def __init__(self, ops: Observability, gateway: Gateway) -> None:
        self.gateway = gateway
        registry = ops.registry
        self.calls = Counter("ibkr_gateway_calls", "Client Portal calls by endpoint template, HTTP status and "
                             "outcome (ok or the error code; status none: no answer).",
                             ["method", "endpoint", "status", "outcome"], registry=registry)
        self.latency = Histogram("ibkr_gateway_call_duration_seconds", "Client Portal call time, queue wait "
                                 "excluded.", ["method", "endpoint"], buckets=LATENCY_BUCKETS, registry=registry)
        self.queue_wait = Histogram("ibkr_gateway_queue_wait_seconds", "Time a call waited in the rate limiter's "
                                    "queue, by priority.", ["priority"], buckets=WAIT_BUCKETS, registry=registry)
        self.rate_limited = Counter("ibkr_gateway_rate_limited_responses", "HTTP 429 answers from the gateway, "
                                    "by endpoint (each puts it in the penalty box).", ["method", "endpoint"],
                                    registry=registry)
        self.retries = Counter("ibkr_gateway_call_retries", "Calls repeated after a dropped connection or a "
                               "gateway quirk.", ["method", "endpoint"], registry=registry)
        limiter = gateway.limiter
        ops.gauge("ibkr_gateway_limiter_queue_depth", "Calls waiting in the rate limiter's queue.",
                  lambda: limiter.waiting)
        ops.counter("ibkr_gateway_limiter_granted", "Calls the rate limiter let through.", lambda: limiter.granted)
        ops.gauge("ibkr_gateway_penalty_box_seconds", "Seconds an endpoint stays in the penalty box after a 429.",
                  self.penalties, labels=("method", "endpoint"))
        ops.gauge("ibkr_gateway_reachable", "1 when the gateway answered the last call, 0 when it did not.",
                  lambda: gateway.reachable)
        ops.gauge("ibkr_gateway_authenticated", "1 when the gateway last said its session is authenticated and "
                  "connected, 0 when it said not.", lambda: gateway.authenticated)
        ops.detail("gateway", self.state)

    def record(self, record: CallRecord) -> None:
        """Count one call (the gateway's `on_call` hook)."""
        status = "none" if record.status is None else str(record.status)
        self.calls.labels(record.method, record.path, status, record.outcome).inc()
        if record.status is not None:
            self.latency.labels(record.method, record.path).observe(record.latency_ms / 1000)
        self.queue_wait.labels(record.priority).observe(record.queue_wait_ms / 1000)
        if record.status == 429:
            self.rate_limited.labels(record.method, record.path).inc()
        if record.retries:
            self.retries.labels(record.method, record.path).inc(record.retries)

    def penalties(self) -> dict[tuple[str, ...], float]:
        """Seconds left in the penalty box, by (method, endpoint template)."""
        limiter = self.gateway.limiter
        now = limiter.clock()
        left: dict[tuple[str, ...], float] = {}
        for key in list(limiter.core.penalty_until):
            seconds = limiter.core.penalty_remaining(key, now)
            if seconds > 0:
                method, _, endpoint = key.partition(" ")
                left[(method, endpoint)] = round(seconds, 3)
        return left

    def state(self) -> dict[str, Any]:
        """The gateway as the bridge last saw it: reachable, authenticated (None: no call has told yet)."""
        return {"url": self.gateway.settings.gateway_url, "reachable": self.gateway.reachable,
                "authenticated": self.gateway.authenticated}


def calls_to(*hooks: Callable[[CallRecord], None]) -> Callable[[CallRecord], None]:
    """One `Gateway.on_call` hook that hands each record to every hook in turn."""

    def each(record: CallRecord) -> None:
        for hook in hooks:
            hook(record)

    return each


def observe_bridge(app: FastStream, broker: NatsBroker, settings: BridgeSettings, gateway: Gateway
                   ) -> GatewayMetrics:
    """Health, readiness, metrics and traces of the bridge (`ibkr_common.ops.observe`), plus its figures."""
    return GatewayMetrics(observe(app, broker, settings, "gateway-bridge"), gateway)
