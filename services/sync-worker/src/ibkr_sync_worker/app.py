"""The sync-worker application: handlers, the sync scheduler, the outbox relay."""

from __future__ import annotations

import logging

from faststream import FastStream

from ibkr_common.bridge_client import BridgeClient
from ibkr_common.clock import Clock, SystemClock
from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay
from ibkr_common.rpc import Rpc
from ibkr_common.service import document_events, ensure_events_stream, make_broker, migrate_at_start
from ibkr_common.subjects import Subjects
from ibkr_sync_worker.handlers import Handlers, build_router
from ibkr_sync_worker.metrics import observe_sync_worker
from ibkr_sync_worker.settings import SyncSettings
from ibkr_sync_worker.store import SyncStore
from ibkr_sync_worker.syncer import Syncer
from ibkr_sync_worker.triggers import SyncScheduler, subscribe_events

SOURCE = "sync-worker"
log = logging.getLogger("ibkr_sync_worker.app")


PUBLISHED_EVENTS = [
    "positions.opened", "positions.changed", "positions.closed", "orders.status_changed", "orders.filled",
    "orders.cancelled", "orders.rejected", "account.updated", "sync.problem",
]

def build_app(settings: SyncSettings, *, clock: Clock | None = None) -> FastStream:
    """Build the sync-worker; nothing connects until the app starts."""
    clock = clock or SystemClock()
    subjects = Subjects(settings.connection)
    broker = make_broker(settings, SOURCE)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    publisher = EventPublisher(broker, subjects=subjects, stream=settings.events_stream, source=SOURCE,
                               environment=settings.default_environment, clock=clock)
    relay = OutboxRelay(sessions, publisher, clock=clock)
    store = SyncStore(sessions, publisher, connection=settings.connection, user_id=settings.user_id,
                      heartbeat_s=settings.synced_at_heartbeat_s,
                      account_move=settings.account_event_move or None)
    bridge = BridgeClient(broker, subjects, timeout_s=settings.bridge_timeout_s, priority="sync")
    syncer = Syncer(bridge, store, publisher, settings, clock, on_committed=relay.wake)
    scheduler = SyncScheduler(syncer, interval_s=settings.sync_interval_ms / 1000,
                              follow_up_s=settings.fill_resync_delay_ms / 1000)
    broker.include_router(build_router(subjects, Handlers(settings, scheduler, Rpc(broker), clock)))
    subscribe_events(broker, subjects, scheduler, SOURCE)
    document_events(broker, settings, PUBLISHED_EVENTS, SOURCE)
    app = FastStream(broker, logger=logging.getLogger("ibkr_sync_worker.faststream"))

    @app.on_startup
    async def _migrate() -> None:
        await migrate_at_start(settings)

    @app.after_startup
    async def _start() -> None:
        await ensure_events_stream(broker, settings)
        relay.start()
        scheduler.start()

    @app.on_shutdown
    async def _stop() -> None:
        await scheduler.stop()
        await relay.stop()
        await publisher.close()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    observe_sync_worker(app, broker, settings, engine=engine, scheduler=scheduler, relay=relay)
    # for tests and the benchmark: the parts, reachable from the app
    app.context.set_global("sync_scheduler", scheduler)
    app.context.set_global("sync_engine", engine)
    return app
