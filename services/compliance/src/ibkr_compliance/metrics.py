"""Compliance's figures for operators: orders by decision and reason code, time to decide, the outbox."""

from __future__ import annotations

from decimal import Decimal

from faststream import FastStream
from faststream.nats import NatsBroker
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from ibkr_common.messages.orders import Decision
from ibkr_common.ops import Observability, observe
from ibkr_common.outbox import OutboxRelay
from ibkr_compliance.lanes import Lanes
from ibkr_compliance.settings import ComplianceSettings

DECIDE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DecisionMetrics:
    """Counts each decision (check, submit, modify) by outcome and by each reason code it carries."""

    def __init__(self, ops: Observability) -> None:
        registry = ops.registry
        self.decisions = Counter("ibkr_compliance_decisions", "Orders decided, by action (check, submit, modify) "
                                 "and decision (allow, warn, block).", ["action", "decision"], registry=registry)
        self.reasons = Counter("ibkr_compliance_reasons", "Reason codes of the decisions, by action and decision.",
                               ["action", "decision", "code"], registry=registry)
        self.duration = Histogram("ibkr_compliance_decision_duration_seconds", "Time to decide an order (state "
                                  "gathered and rules evaluated).", ["action"], buckets=DECIDE_BUCKETS,
                                  registry=registry)

    def decided(self, action: str, decision: Decision, latency_ms: Decimal) -> None:
        """Count one decision (ComplianceService.on_decision)."""
        self.decisions.labels(action, decision.decision).inc()
        for reason in decision.reasons:
            self.reasons.labels(action, decision.decision, reason.code).inc()
        self.duration.labels(action).observe(float(latency_ms) / 1000)


def observe_compliance(app: FastStream, broker: NatsBroker, settings: ComplianceSettings, *, engine: AsyncEngine,
                       lanes: Lanes, relay: OutboxRelay) -> Observability:
    """Health, readiness, metrics and traces of compliance, with its decisions and outbox figures."""
    ops = observe(app, broker, settings, "compliance", database=engine)
    lanes.on_decision = DecisionMetrics(ops).decided
    ops.outbox(relay)
    ops.publisher(relay.publisher)
    return ops
