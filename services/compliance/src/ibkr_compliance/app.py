"""The compliance application: one process for every connection (lanes.py), the outbox relay, the
connection directory and the cache invalidation of every connection's events."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from faststream import FastStream
from faststream.nats import NatsRouter

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.connections import ConnectionDirectory, ConnectionMiddleware, current_message
from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay
from ibkr_common.rpc import Rpc
from ibkr_common.service import (
    document_events,
    ensure_events_stream,
    make_broker,
    migrate_at_start,
)
from ibkr_common.subjects import Subjects
from ibkr_compliance.disclosures import DisclosureCatalogue
from ibkr_compliance.handlers import build_router
from ibkr_compliance.lanes import SOURCE, Lanes, Shared
from ibkr_compliance.metrics import observe_compliance
from ibkr_compliance.settings import ComplianceSettings

log = logging.getLogger("ibkr_compliance.app")

#: Event areas that change what compliance caches (the account's state, the halt flag, the session).
INVALIDATING_AREAS = ("positions", "orders", "account", "trading", "session")

PUBLISHED_EVENTS = [
    "compliance.allowed", "compliance.warned", "compliance.blocked", "orders.submitted", "orders.resolved",
    "trading.halted", "trading.resumed",
]


def build_app(settings: ComplianceSettings, *, clock: Clock | None = None) -> FastStream:
    """Build the compliance service of every connection; nothing connects until the app starts.

    The environment's connection (`IBKR_CONNECTION`) is served from the start; the registry's are picked
    up and dropped at run time (`ConnectionDirectory`, `Lanes`)."""
    clock = clock or SystemClock()
    broker = make_broker(settings, SOURCE)
    # The one engine of the service's database; on PostgreSQL psycopg prepares repeated statements itself
    # (its prepare_threshold, left at the default of 5 executions per connection).
    engine = make_engine(settings.database_url, one_sqlite_connection=True)
    sessions = make_sessionmaker(engine)
    # One relay publishes every connection's outbox rows (each row keeps its subject); its publisher is
    # only the sender.
    relay_publisher = EventPublisher(broker, subjects=Subjects(settings.connection), stream=settings.events_stream,
                                     source=SOURCE, environment=settings.default_environment, clock=clock)
    relay = OutboxRelay(sessions, relay_publisher, clock=clock, linger_s=settings.event_linger_ms / 1000)
    directory = ConnectionDirectory(broker, settings)
    shared = Shared(broker=broker, settings=settings, clock=clock, engine=engine, sessions=sessions, relay=relay,
                    rpc=Rpc(broker), config=settings.rules_config(),
                    disclosures=DisclosureCatalogue(settings.disclosure_versions))
    lanes = Lanes(shared, directory)
    broker.include_router(build_router(lanes))
    every = Subjects.every_connection()
    invalidate = _invalidator(lanes)
    invalidators = NatsRouter(middlewares=[ConnectionMiddleware])  # the message without a worker-thread hop
    for area in INVALIDATING_AREAS:  # not events.>: the bridge's gateway.call alone is one per HTTP call
        # Core NATS without a queue group: every replica drops its own caches.
        invalidators.subscriber(every.events_of(area), title=f"invalidate-on-{area}-events", no_reply=True,
                                description=f"Drops cached state of the connection when a `{area}` event says it "
                                            "changed.")(invalidate)
    broker.include_router(invalidators)
    directory.subscribe()
    document_events(broker, settings, PUBLISHED_EVENTS, SOURCE)
    app = FastStream(broker, logger=logging.getLogger("ibkr_compliance.faststream"))

    @app.on_startup
    async def _migrate() -> None:
        await migrate_at_start(settings)

    @app.after_startup
    async def _start() -> None:
        await ensure_events_stream(broker, settings)
        relay.start()
        await directory.start()
        await lanes.start()

    @app.on_shutdown
    async def _stop() -> None:
        await directory.stop()
        await lanes.stop()
        await relay.stop()
        await relay_publisher.close()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    app.context.set_global("compliance", lanes)
    observe_compliance(app, broker, settings, engine=engine, lanes=lanes, relay=relay)
    return app


def _invalidator(lanes: Lanes) -> Callable[[], Awaitable[None]]:
    """Drops cached state of the event's connection when it says it changed (core subscription, no ack)."""

    async def on_event() -> None:
        message = current_message()
        lanes.invalidate(message.raw_message.subject, b'"source":"compliance"' in message.body)

    return on_event
