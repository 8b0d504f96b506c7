"""The bridge's figures for operators: every Client Portal call, the rate limiters, the gateways' state.

Calls are counted from the `CallRecord` each one leaves (by connection and endpoint template, never
the filled path, so no account number becomes a label). Each connection's limiter queue, penalty box
(its gateway's, shared with the connections on the same gateway) and gateway's last known state are read
when Prometheus scrapes. The bootstrap connection's gateway state is in the health and readiness bodies
as `gateway` (as before), every other served connection's as `connections`; none makes the bridge not
ready: the stack comes up before anyone logs in.
"""

from __future__ import annotations

from typing import Any

from faststream import FastStream
from faststream.nats import NatsBroker
from prometheus_client import Counter, Histogram

from ibkr_common.ops import Observability, observe
from ibkr_gateway_bridge.client.gateway import CallRecord
from ibkr_gateway_bridge.connections import ServedConnections
from ibkr_gateway_bridge.settings import BridgeSettings

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)


class GatewayMetrics:
    """Counts calls from their records; reads each connection's limiter and gateway state at each scrape.

    Every figure of a gateway carries the `connection` label: each connection has its own gateway
    login, limiter and penalty box.
    """

    def __init__(self, ops: Observability, served: ServedConnections) -> None:
        self.served = served
        registry = ops.registry
        self.calls = Counter("ibkr_gateway_calls", "Client Portal calls by connection, endpoint template, HTTP "
                             "status and outcome (ok or the error code; status none: no answer).",
                             ["connection", "method", "endpoint", "status", "outcome"], registry=registry)
        self.latency = Histogram("ibkr_gateway_call_duration_seconds", "Client Portal call time, queue wait "
                                 "excluded.", ["connection", "method", "endpoint"], buckets=LATENCY_BUCKETS,
                                 registry=registry)
        self.queue_wait = Histogram("ibkr_gateway_queue_wait_seconds", "Time a call waited in its connection's "
                                    "rate limiter queue, by priority.", ["connection", "priority"],
                                    buckets=WAIT_BUCKETS, registry=registry)
        self.rate_limited = Counter("ibkr_gateway_rate_limited_responses", "HTTP 429 answers from the gateway, "
                                    "by endpoint (each puts it in the penalty box).",
                                    ["connection", "method", "endpoint"], registry=registry)
        self.retries = Counter("ibkr_gateway_call_retries", "Calls repeated after a dropped connection or a "
                               "gateway quirk.", ["connection", "method", "endpoint"], registry=registry)
        by_connection = ("connection",)
        ops.gauge("ibkr_gateway_limiter_queue_depth", "Calls waiting in the connection's rate limiter queue.",
                  lambda: {(s.id,): s.gateway.limiter.waiting for s in served}, labels=by_connection)
        ops.counter("ibkr_gateway_limiter_granted", "Calls the connection's rate limiter let through (since its "
                    "gateway was last built).", lambda: {(s.id,): s.gateway.limiter.granted for s in served},
                    labels=by_connection)
        ops.gauge("ibkr_gateway_penalty_box_seconds", "Seconds an endpoint stays in the penalty box after a 429.",
                  self.penalties, labels=("connection", "method", "endpoint"))
        ops.gauge("ibkr_gateway_reachable", "1 when the connection's gateway answered the last call, 0 when it "
                  "did not.", lambda: {(s.id,): s.gateway.reachable for s in served}, labels=by_connection)
        ops.gauge("ibkr_gateway_authenticated", "1 when the connection's gateway last said its session is "
                  "authenticated and connected, 0 when it said not.",
                  lambda: {(s.id,): s.gateway.authenticated for s in served}, labels=by_connection)
        ops.gauge("ibkr_bridge_connections", "Connections the bridge serves.", lambda: len(served))
        ops.detail("gateway", self.state)
        ops.detail("connections", self.others)

    def record(self, conn: str, record: CallRecord) -> None:
        """Count one call of connection `conn` (its gateway's `on_call` hook)."""
        status = "none" if record.status is None else str(record.status)
        self.calls.labels(conn, record.method, record.path, status, record.outcome).inc()
        if record.status is not None:
            self.latency.labels(conn, record.method, record.path).observe(record.latency_ms / 1000)
        self.queue_wait.labels(conn, record.priority).observe(record.queue_wait_ms / 1000)
        if record.status == 429:
            self.rate_limited.labels(conn, record.method, record.path).inc()
        if record.retries:
            self.retries.labels(conn, record.method, record.path).inc(record.retries)

    def penalties(self) -> dict[tuple[str, ...], float]:
        """Seconds left in the penalty box, by (connection, method, endpoint template)."""
        left: dict[tuple[str, ...], float] = {}
        for served in self.served:
            limiter = served.gateway.limiter
            now = limiter.clock()
            for key in list(limiter.core.penalty_until):
                seconds = limiter.core.penalty_remaining(key, now)
                if seconds > 0:
                    method, _, endpoint = key.partition(" ")
                    left[(served.id, method, endpoint)] = round(seconds, 3)
        return left

    def state(self) -> dict[str, Any]:
        """The bootstrap connection's gateway as the bridge last saw it: reachable, authenticated (None: no call
        has told yet)."""
        gateway = self.served.bootstrap.gateway
        return {"url": gateway.settings.gateway_url, "reachable": gateway.reachable,
                "authenticated": gateway.authenticated}

    def others(self) -> dict[str, Any]:
        """Every other served connection's gateway, by connection (never makes the bridge not ready)."""
        return {s.id: s.state() for s in self.served if s is not self.served.bootstrap}


def observe_bridge(app: FastStream, broker: NatsBroker, settings: BridgeSettings, served: ServedConnections
                   ) -> GatewayMetrics:
    """Health, readiness, metrics and traces of the bridge (`ibkr_common.ops.observe`), plus its figures."""
    return GatewayMetrics(observe(app, broker, settings, "gateway-bridge"), served)
