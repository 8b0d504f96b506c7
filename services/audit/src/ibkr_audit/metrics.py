"""Audit's figures for operators: events stored, the consumer's lag behind the stream, the last verify."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faststream import FastStream
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from ibkr_audit.consumer import AuditConsumer
from ibkr_audit.settings import AuditSettings
from ibkr_audit.store import AuditStore
from ibkr_common.clock import Clock, SystemClock
from ibkr_common.messages.audit import AuditVerifyResult
from ibkr_common.ops import Observability, observe

#: The consumer's counters exposed, as `ibkr_audit_events_<name>_total`.
STATS = {
    "received": "Events fetched from the stream since start.",
    "stored": "Events stored in the hash-chained log since start.",
    "duplicates": "Events fetched again and skipped (already stored) since start.",
    "dead_letters": "Messages stored apart as dead letters (not valid envelopes) since start.",
    "secrets_redacted": "Events stored with secret-looking values masked since start.",
}


@dataclass
class Verifications:
    """The last `audit.verify` answered by this process."""

    clock: Clock
    at: float | None = None
    ok: bool | None = None
    events_checked: int | None = None

    def record(self, result: AuditVerifyResult) -> None:
        """Remember a verify's outcome (the verify handler's hook)."""
        self.at = self.clock.now().timestamp()
        self.ok = result.ok
        self.events_checked = result.events_checked


def verifications(clock: Clock | None = None) -> Verifications:
    """A fresh record of verifies."""
    return Verifications(clock or SystemClock())


def audit_figures(ops: Observability, settings: AuditSettings, store: AuditStore,
                  consumer: Callable[[], AuditConsumer | None], verified: Verifications) -> None:
    """Counters of the running consumer, the lag (messages of the stream not yet stored), the last verify."""

    def stat(name: str) -> Callable[[], int | None]:
        def read() -> int | None:
            running = consumer()
            return getattr(running.stats, name) if running else None
        return read

    for name, documentation in STATS.items():
        ops.counter(f"ibkr_audit_events_{name}", documentation, stat(name))
    ops.gauge("ibkr_audit_last_seq", "The newest sequence number of the log.", lambda: store.known_last_seq or None)
    lag: dict[str, int] = {}

    async def sample_lag() -> None:
        info = await ops.broker.connection.jetstream().consumer_info(settings.events_stream, settings.audit_consumer)
        lag["events"] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    ops.sampler(sample_lag)
    ops.gauge("ibkr_audit_lag_events", "Events of the stream audit has not stored yet (pending and in flight).",
              lambda: lag.get("events"))
    ops.gauge("ibkr_audit_last_verify_timestamp_seconds", "When this process last answered audit.verify (Unix "
              "time).", lambda: verified.at)
    ops.gauge("ibkr_audit_last_verify_ok", "1 when the last verify found the chain intact, 0 when it did not.",
              lambda: verified.ok)
    ops.gauge("ibkr_audit_last_verify_events_checked", "Events the last verify walked.",
              lambda: verified.events_checked)


def observe_audit(app: FastStream, broker: NatsBroker, settings: AuditSettings, *, engine: AsyncEngine,
                  store: AuditStore, consumer: Callable[[], AuditConsumer | None], verified: Verifications
                  ) -> Observability:
    """Health, readiness, metrics and traces of audit, with its log figures."""
    ops = observe(app, broker, settings, "audit", database=engine)
    audit_figures(ops, settings, store, consumer, verified)
    return ops
