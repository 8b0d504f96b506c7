"""The sync-worker application: handlers, the sync scheduler, the outbox relay."""

from __future__ import annotations

import logging

from faststream import FastStream

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.connections import ConnectionDirectory
from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay
from ibkr_common.rpc import Rpc
from ibkr_common.service import document_events, ensure_events_stream, make_broker, migrate_at_start
from ibkr_common.subjects import Subjects
from ibkr_sync_worker.handlers import Handlers, build_router
from ibkr_sync_worker.metrics import observe_sync_worker
from ibkr_sync_worker.schedules import Schedules
from ibkr_sync_worker.settings import SyncSettings
from ibkr_sync_worker.triggers import subscribe_events

SOURCE = "sync-worker"
log = logging.getLogger("ibkr_sync_worker.app")


PUBLISHED_EVENTS = [
    "positions.opened", "positions.changed", "positions.closed", "orders.status_changed", "orders.filled",
    "orders.cancelled", "orders.rejected", "account.updated", "sync.problem",
]

def build_app(settings: SyncSettings, *, clock: Clock | None = None) -> FastStream:
    """Build the sync-worker (one schedule per connection of its directory); nothing connects until the app
    starts. `app.context` holds `sync_schedules` and `sync_scheduler` (the bootstrap connection's)."""
    clock = clock or SystemClock()
    broker = make_broker(settings, SOURCE)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    # the relay publishes outbox rows to the subject each row carries, whatever its connection
    relay_publisher = EventPublisher(broker, subjects=Subjects(settings.connection), stream=settings.events_stream,
                                     source=SOURCE, environment=settings.default_environment, clock=clock)
    relay = OutboxRelay(sessions, relay_publisher, clock=clock)
    schedules = Schedules(broker=broker, settings=settings, sessions=sessions, relay=relay, clock=clock)
    directory = ConnectionDirectory(broker, settings)
    directory.on_change(schedules.on_change)
    directory.subscribe()
    broker.include_router(build_router(Handlers(settings, schedules, directory, Rpc(broker), clock)))
    subscribe_events(broker, lambda conn: (found.scheduler if (found := schedules.get(conn)) else None), SOURCE)
    document_events(broker, settings, PUBLISHED_EVENTS, SOURCE)
    app = FastStream(broker, logger=logging.getLogger("ibkr_sync_worker.faststream"))

    bootstrap = schedules.serve(directory.bootstrap)

    @app.on_startup
    async def _migrate() -> None:
        await migrate_at_start(settings)

    @app.after_startup
    async def _start() -> None:
        await ensure_events_stream(broker, settings)
        relay.start()
        schedules.start()
        await directory.start()

    @app.on_shutdown
    async def _stop() -> None:
        await directory.stop()
        await schedules.stop()
        await relay.stop()
        await relay_publisher.close()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    observe_sync_worker(app, broker, settings, engine=engine, schedules=schedules, relay=relay)
    # for tests and the benchmark: the parts, reachable from the app
    app.context.set_global("sync_scheduler", bootstrap.scheduler)  # the bootstrap connection's
    app.context.set_global("sync_schedules", schedules)
    app.context.set_global("sync_directory", directory)
    app.context.set_global("sync_engine", engine)
    return app
