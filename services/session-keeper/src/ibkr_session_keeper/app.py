"""build_app(settings) -> FastStream: the session-keeper's broker, database, keepers (one per connection) and
outbox relay."""

from __future__ import annotations

import logging
from datetime import timedelta

from faststream import FastStream

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.connections import ConnectionDirectory
from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay
from ibkr_common.service import document_events, ensure_events_stream, make_broker, migrate_at_start
from ibkr_common.subjects import SESSION_EVENTS, Subjects
from ibkr_session_keeper.handlers import build_router
from ibkr_session_keeper.keepers import Keepers
from ibkr_session_keeper.metrics import observe_session_keeper
from ibkr_session_keeper.settings import SessionKeeperSettings
from ibkr_session_keeper.state import Policy

log = logging.getLogger("ibkr_session_keeper.app")
SERVICE = "session-keeper"


def policy_of(settings: SessionKeeperSettings) -> Policy:
    """The state machine's policy from the settings."""
    return Policy(
        region=settings.gateway_region,
        windows=settings.window_table(),
        warning=timedelta(minutes=settings.session_warning_minutes),
        reminder=timedelta(seconds=settings.session_reminder_s),
        on_competing=settings.on_competing,
        backoff_initial=timedelta(seconds=settings.reauth_backoff_s),
        backoff_max=timedelta(seconds=settings.reauth_backoff_max_s),
        max_attempts=settings.reauth_max_attempts,
        use_sso_expires=settings.use_sso_expires,
    )


def build_app(settings: SessionKeeperSettings, *, clock: Clock | None = None) -> FastStream:
    """The session-keeper app: one keeper per connection of its directory. `app.keepers` holds them and
    `app.keeper` is the bootstrap connection's, once started (tests)."""
    clock = clock or SystemClock()
    broker = make_broker(settings, SERVICE)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    # the relay publishes outbox rows to the subject each row carries, whatever its connection
    relay_publisher = EventPublisher(broker, subjects=Subjects(settings.connection), stream=settings.events_stream,
                                     source=SERVICE, environment=settings.default_environment, clock=clock)
    relay = OutboxRelay(sessions, relay_publisher, clock=clock)
    keepers = Keepers(broker=broker, settings=settings, sessions=sessions, relay=relay, clock=clock,
                      policy=lambda: policy_of(settings))
    directory = ConnectionDirectory(broker, settings)
    directory.on_change(keepers.on_change)
    directory.subscribe()
    broker.include_router(build_router(keepers, clock, directory))
    document_events(broker, settings, [f"session.{kind}" for kind in SESSION_EVENTS], SERVICE)
    app = FastStream(broker, logger=logging.getLogger("ibkr_session_keeper.faststream"))

    @app.on_startup
    async def _prepare() -> None:
        await migrate_at_start(settings)
        app.keeper = await keepers.add(directory.bootstrap)  # type: ignore[attr-defined]

    @app.after_startup
    async def _start() -> None:
        await ensure_events_stream(broker, settings)
        relay.start()
        keepers.start()
        await directory.start()
        log.info("keeping the sessions of %d connection(s) (tickle every %.1f s, region %s, on competing: %s)",
                 len(keepers), settings.tickle_interval_ms / 1000, settings.gateway_region, settings.on_competing)

    @app.on_shutdown
    async def _stop() -> None:
        await directory.stop()
        await keepers.stop()
        await relay.stop()
        await relay_publisher.close()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    observe_session_keeper(app, broker, settings, engine=engine, keepers=keepers, relay=relay)
    app.keepers = keepers  # type: ignore[attr-defined]
    app.directory = directory  # type: ignore[attr-defined]
    return app
