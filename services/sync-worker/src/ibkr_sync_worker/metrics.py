"""The sync-worker's figures for operators, read from each connection's syncer and scheduler when Prometheus scrapes."""

from __future__ import annotations

from faststream import FastStream
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from ibkr_common.ops import Observability, observe
from ibkr_common.outbox import OutboxRelay
from ibkr_sync_worker.schedules import Schedules
from ibkr_sync_worker.settings import SyncSettings


def sync_figures(ops: Observability, schedules: Schedules) -> None:
    """Per connection: age of each account's last complete read (account, positions, orders), rounds, pause."""

    def ages() -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for found in schedules:
            syncer, now = found.syncer, found.syncer.clock.now()
            for account, parts in list(syncer.marks.items()):
                for part, at in list(parts.items()):
                    out[(found.conn, account, part)] = max(0.0, (now - at).total_seconds())
        return out

    ops.gauge("ibkr_sync_age_seconds", "Seconds since a part (account, positions, orders) of an account was last "
              "read completely.", ages, labels=("connection", "account", "part"))
    ops.counter("ibkr_sync_rounds", "Sync rounds completed since start.",
                lambda: {(f.conn,): f.scheduler.rounds for f in schedules}, labels=("connection",))
    ops.gauge("ibkr_sync_last_failed", "1 when the last sync round could not run or failed.",
              lambda: {(f.conn,): f.scheduler.last_failed for f in schedules}, labels=("connection",))
    ops.gauge("ibkr_sync_paused", "1 while syncs wait for an authenticated session.",
              lambda: {(f.conn,): f.scheduler.paused for f in schedules}, labels=("connection",))
    ops.gauge("ibkr_sync_connections", "Connections this sync-worker syncs.", lambda: len(schedules))


def observe_sync_worker(app: FastStream, broker: NatsBroker, settings: SyncSettings, *, engine: AsyncEngine,
                        schedules: Schedules, relay: OutboxRelay) -> Observability:
    """Health, readiness, metrics and traces of the sync-worker, with its sync and outbox figures."""
    ops = observe(app, broker, settings, "sync-worker", database=engine)
    sync_figures(ops, schedules)
    ops.outbox(relay)
    ops.publisher(relay.publisher)
    return ops
