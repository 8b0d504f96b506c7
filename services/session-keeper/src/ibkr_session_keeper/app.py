"""build_app(settings) -> FastStream: the session-keeper's broker, database, loop and outbox relay."""

from __future__ import annotations

import logging
from datetime import timedelta

from faststream import FastStream

from ibkr_common.bridge_client import BridgeClient
from ibkr_common.clock import Clock, SystemClock
from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay
from ibkr_common.service import document_events, ensure_events_stream, make_broker, migrate_at_start
from ibkr_common.subjects import SESSION_EVENTS, Subjects
from ibkr_session_keeper.gateway import SessionGateway
from ibkr_session_keeper.handlers import build_router
from ibkr_session_keeper.keeper import Keeper
from ibkr_session_keeper.metrics import observe_session_keeper
from ibkr_session_keeper.settings import SessionKeeperSettings
from ibkr_session_keeper.state import Policy
from ibkr_session_keeper.store import TrackingStore

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
    """The session-keeper app; its keeper is reachable as `app.keeper` (tests)."""
    clock = clock or SystemClock()
    subjects = Subjects(settings.connection)
    broker = make_broker(settings, SERVICE)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    publisher = EventPublisher(broker, subjects=subjects, stream=settings.events_stream, source=SERVICE,
                               environment=settings.default_environment, clock=clock)
    relay = OutboxRelay(sessions, publisher, clock=clock)

    bridge = BridgeClient(broker, subjects, timeout_s=settings.bridge_timeout_s)
    keeper = Keeper(
        policy=policy_of(settings), bridge=SessionGateway(bridge),
        store=TrackingStore(sessions, connection=settings.connection, user_id=settings.user_id, clock=clock),
        publisher=publisher, relay=relay, clock=clock, tickle_interval_s=settings.tickle_interval_ms / 1000,
        region=settings.gateway_region,
    )
    broker.include_router(build_router(subjects, keeper))
    document_events(broker, settings, [f"session.{kind}" for kind in SESSION_EVENTS], SERVICE)
    app = FastStream(broker, logger=logging.getLogger("ibkr_session_keeper.faststream"))

    @app.on_startup
    async def _prepare() -> None:
        await migrate_at_start(settings)
        await keeper.load()

    @app.after_startup
    async def _start() -> None:
        await ensure_events_stream(broker, settings)
        relay.start()
        keeper.start()
        log.info("keeping session of %s (tickle every %.1f s, region %s, on competing: %s)",
                 settings.connection, keeper.tickle_interval_s, settings.gateway_region, settings.on_competing)

    @app.on_shutdown
    async def _stop() -> None:
        await keeper.stop()
        await relay.stop()
        await publisher.close()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    observe_session_keeper(app, broker, settings, engine=engine, keeper=keeper, relay=relay)
    app.keeper = keeper  # type: ignore[attr-defined]
    return app
