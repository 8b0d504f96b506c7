"""The sync-worker's figures for operators, read from the syncer and its scheduler when Prometheus scrapes."""

from __future__ import annotations

from faststream import FastStream
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from ibkr_common.ops import Observability, observe
from ibkr_common.outbox import OutboxRelay
from ibkr_sync_worker.settings import SyncSettings
from ibkr_sync_worker.triggers import SyncScheduler


def sync_figures(ops: Observability, scheduler: SyncScheduler) -> None:
    """Age of each account's last complete read (account, positions, orders), rounds, pause."""
    syncer = scheduler.syncer

    def ages() -> dict[tuple[str, ...], float]:
        now = syncer.clock.now()
        return {(account, part): max(0.0, (now - at).total_seconds())
                for account, parts in list(syncer.marks.items()) for part, at in list(parts.items())}

    ops.gauge("ibkr_sync_age_seconds", "Seconds since a part (account, positions, orders) of an account was last "
              "read completely.", ages, labels=("account", "part"))
    ops.counter("ibkr_sync_rounds", "Sync rounds completed since start.", lambda: scheduler.rounds)
    ops.gauge("ibkr_sync_last_failed", "1 when the last sync round could not run or failed.",
              lambda: scheduler.last_failed)
    ops.gauge("ibkr_sync_paused", "1 while syncs wait for an authenticated session.", lambda: scheduler.paused)


def observe_sync_worker(app: FastStream, broker: NatsBroker, settings: SyncSettings, *, engine: AsyncEngine,
                        scheduler: SyncScheduler, relay: OutboxRelay) -> Observability:
    """Health, readiness, metrics and traces of the sync-worker, with its sync and outbox figures."""
    ops = observe(app, broker, settings, "sync-worker", database=engine)
    sync_figures(ops, scheduler)
    ops.outbox(relay)
    ops.publisher(relay.publisher)
    return ops
