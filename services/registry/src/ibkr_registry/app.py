"""The registry application: the commands, the bootstrap connection, the outbox relay."""

from __future__ import annotations

import logging

from faststream import FastStream
from faststream.nats import NatsBroker

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.events import EventPublisher
from ibkr_common.ops import Observability, observe
from ibkr_common.outbox import OutboxRelay
from ibkr_common.replies import ServiceError
from ibkr_common.service import ensure_events_stream, make_broker, migrate_at_start
from ibkr_common.subjects import Subjects
from ibkr_contract.connections import GatewaySettings
from ibkr_contract.envelope import EventEnvelope
from ibkr_contract.subjects import CONNECTION_EVENTS
from ibkr_registry.handlers import Handlers, build_router
from ibkr_registry.settings import RegistrySettings
from ibkr_registry.store import SOURCE, RegistryStore

log = logging.getLogger("ibkr_registry.app")
PUBLISHED_EVENTS = [f"connection.{kind}" for kind in CONNECTION_EVENTS]


def bootstrap_gateway(settings: RegistrySettings) -> GatewaySettings:
    """The gateway of the environment's connection (`IBKR_GATEWAY_*`)."""
    ca_pem = settings.gateway_ca_file.read_text() if settings.gateway_ca_file else None
    return GatewaySettings(host=settings.gateway_host, port=settings.gateway_port, ssl=settings.gateway_ssl,
                           ca_pem=ca_pem)


async def ensure_bootstrap(store: RegistryStore, settings: RegistrySettings) -> None:
    """Register (or bring up to date) the environment's connection: owned by IBKR_USER_ID, always enabled."""
    gateway = bootstrap_gateway(settings)
    found = await store.owner_of(settings.connection)
    if found is not None and not found[1]:
        log.error("connection %s of the environment is registered as a user's connection too; the registry "
                  "keeps the user's", settings.connection)
        return
    if found is not None and found[0] != settings.user_id:
        await store.delete(settings.connection, found[0])  # IBKR_USER_ID changed: the new owner's now
        found = None
    if found is None:
        try:
            await store.create(user_id=settings.user_id, connection=settings.connection,
                               environment=settings.default_environment, gateway=gateway, username=None,
                               bootstrap=True)
        except ServiceError:
            pass  # another replica registered it at the same moment
        return

    async def refresh(row, accounts, session):  # type: ignore[no-untyped-def]
        changes = []
        if (row.gateway_host, row.gateway_port, row.gateway_ssl, row.gateway_ca_pem) != (
                gateway.host, gateway.port, gateway.ssl, gateway.ca_pem):
            row.gateway_host, row.gateway_port = gateway.host, gateway.port
            row.gateway_ssl, row.gateway_ca_pem = gateway.ssl, gateway.ca_pem
            changes.append("gateway")
        if row.environment != settings.default_environment:
            row.environment = settings.default_environment
            changes.append("environment")
        return changes

    await store.change(settings.connection, settings.user_id, refresh)


def document_connection_events(broker: NatsBroker, settings: RegistrySettings) -> None:
    """Declare the `connection.*` events for the AsyncAPI document, on every connection (`ibkr.*`)."""
    for event_type in PUBLISHED_EVENTS:
        broker.publisher(
            Subjects.every_connection().events_of("connection").replace(".>", "." + event_type.split(".", 1)[1]),
            schema=EventEnvelope, title=f"{event_type}:Event",
            description=f"`{event_type}` event published by the registry on the {settings.events_stream} stream "
                        "(payload `ConnectionPayload`), from its outbox in the transaction of the change.",
        )


def registry_figures(ops: Observability, store: RegistryStore) -> None:
    """`ibkr_registry_connections{state}`: the registered connections by state, counted at each scrape."""
    counts: dict[tuple[str, ...], float] = {}

    async def sample() -> None:
        views = await store.directory()
        states = ("unverified", "verified", "enabled", "disabled")
        fresh: dict[tuple[str, ...], float] = {(state,): 0.0 for state in states}
        for view in views:
            fresh[(view.state,)] += 1
        counts.clear()
        counts.update(fresh)

    ops.sampler(sample)
    ops.gauge("ibkr_registry_connections", "Registered connections by state (the bootstrap one included).",
              lambda: dict(counts), labels=("state",))


def build_app(settings: RegistrySettings, *, clock: Clock | None = None) -> FastStream:
    """Build the registry; nothing connects until the app starts."""
    clock = clock or SystemClock()
    broker = make_broker(settings, SOURCE)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    publisher = EventPublisher(broker, subjects=Subjects(settings.connection), stream=settings.events_stream,
                               source=SOURCE, environment=settings.default_environment, clock=clock)
    relay = OutboxRelay(sessions, publisher, clock=clock)
    store = RegistryStore(sessions, settings.cipher(), clock, stream=settings.events_stream, broker=broker,
                          quarantine_s=settings.quarantine_s, on_committed=relay.wake)
    handlers = Handlers(settings, store, broker, clock)
    broker.include_router(build_router(handlers, clock))
    document_connection_events(broker, settings)
    app = FastStream(broker, logger=logging.getLogger("ibkr_registry.faststream"))

    @app.on_startup
    async def _migrate() -> None:
        await migrate_at_start(settings)

    @app.after_startup
    async def _start() -> None:
        await ensure_events_stream(broker, settings)
        await ensure_bootstrap(store, settings)
        relay.start()

    @app.on_shutdown
    async def _stop() -> None:
        await relay.stop()
        await publisher.close()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    ops = observe(app, broker, settings, "registry", database=engine)
    ops.outbox(relay)
    ops.publisher(relay.publisher)
    registry_figures(ops, store)
    app.context.set_global("registry_store", store)
    app.context.set_global("registry_engine", engine)
    return app
