"""The compliance application: handlers, outbox relay and the resolver of uncertain sends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from faststream import FastStream
from faststream.nats.annotations import NatsMessage

from ibkr_common.bridge_client import BridgeClient
from ibkr_common.clock import Clock, SystemClock
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
from ibkr_common.subjects import Subjects, event_type_of
from ibkr_common.tasks import stop_tasks
from ibkr_compliance.admin import ComplianceAdmin
from ibkr_compliance.controls import Controls
from ibkr_compliance.disclosures import DisclosureCatalogue
from ibkr_compliance.handlers import build_router
from ibkr_compliance.instruments import Instruments
from ibkr_compliance.ledger import Ledger
from ibkr_compliance.metrics import observe_compliance
from ibkr_compliance.placement import Placement
from ibkr_compliance.questions import QuestionPolicy
from ibkr_compliance.reservations import Reservations
from ibkr_compliance.resolver import Resolver
from ibkr_compliance.service import ComplianceService
from ibkr_compliance.settings import ComplianceSettings
from ibkr_compliance.state import StateGatherer

log = logging.getLogger("ibkr_compliance.app")
SOURCE = "compliance"
#: Longer than the bridge can still be working on an order compliance stopped waiting for (its order
#: budget, IBKR_BRIDGE_ORDER_BUDGET_S, is kept below compliance's wait, IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S).
IN_FLIGHT_MARGIN_S = 2.0


#: Event areas that change what compliance caches (the account's state, the halt flag, the session).
INVALIDATING_AREAS = ("positions", "orders", "account", "trading", "session")

PUBLISHED_EVENTS = [
    "compliance.allowed", "compliance.warned", "compliance.blocked", "orders.submitted", "orders.resolved",
    "trading.halted", "trading.resumed",
]

def build_app(settings: ComplianceSettings, *, clock: Clock | None = None) -> FastStream:
    """Build the compliance service; nothing connects until the app starts."""
    clock = clock or SystemClock()
    broker = make_broker(settings, SOURCE)
    subjects = Subjects(settings.connection)
    environment = settings.default_environment
    # The one engine of the service's database; on PostgreSQL psycopg prepares repeated statements itself
    # (its prepare_threshold, left at the default of 5 executions per connection).
    engine = make_engine(settings.database_url, one_sqlite_connection=True)
    sessions = make_sessionmaker(engine)
    publisher = EventPublisher(broker, subjects=subjects, stream=settings.events_stream,
                               source=SOURCE, environment=environment, clock=clock)
    relay = OutboxRelay(sessions, publisher, clock=clock, linger_s=settings.event_linger_ms / 1000)
    ledger = Ledger(engine, publisher, relay, settings.connection, settings.user_id)
    controls = Controls(sessions, publisher, relay, settings.connection, settings.user_id)
    rpc = Rpc(broker)
    bridge = BridgeClient(broker, subjects, timeout_s=settings.bridge_timeout_s)
    timeout_s = settings.state_timeout_ms / 1000
    instruments = Instruments(bridge, max(timeout_s, 5.0))
    config = settings.rules_config()
    max_age_s = float(config.max_snapshot_age_s)
    gatherer = StateGatherer(rpc, bridge, subjects, instruments, environment=environment,
                             live_accounts=settings.live_accounts, restrictions=settings.restrictions,
                             timeout_s=timeout_s, cache_s=settings.state_cache_ms / 1000, max_age_s=max_age_s)
    disclosures = DisclosureCatalogue(settings.disclosure_versions)
    policy = QuestionPolicy(settings.question_policy, environment)
    placement = Placement(bridge, ledger, publisher, policy, clock, timeout_s=settings.bridge_timeout_s,
                          max_rounds=settings.max_question_rounds)
    resolver = Resolver(ledger, bridge, placement, clock, in_flight_s=settings.bridge_timeout_s + IN_FLIGHT_MARGIN_S,
                        spacing_s=settings.resolve_spacing_s, timeout_s=settings.bridge_timeout_s)
    service = ComplianceService(
        subjects=subjects, environment=environment, rpc=rpc, bridge=bridge, ledger=ledger, controls=controls,
        gatherer=gatherer,
        instruments=instruments, placement=placement, publisher=publisher, clock=clock, config=config,
        regime=settings.regime, disclosures=disclosures, timeout_s=settings.bridge_timeout_s,
        submit_budget_s=settings.submit_budget_s,
        reservations=Reservations(timedelta(seconds=max_age_s + 60)), wake_resolver=resolver.wake,
    )
    admin = ComplianceAdmin(controls=controls, disclosures=disclosures, gatherer=gatherer, publisher=publisher,
                            clock=clock, config=config, regime=settings.regime, environment=environment)
    broker.include_router(build_router(subjects, service, admin))
    invalidate = _invalidator(gatherer, controls)
    for area in INVALIDATING_AREAS:  # not events.>: the bridge's gateway.call alone is one per HTTP call
        # Core NATS without a queue group: every replica drops its own caches.
        broker.subscriber(subjects.events_of(area), title=f"invalidate-on-{area}-events",
                          description=f"Drops cached state when a `{area}` event says it changed.")(invalidate)
    document_events(broker, settings, PUBLISHED_EVENTS, SOURCE)
    app = FastStream(broker, logger=logging.getLogger("ibkr_compliance.faststream"))
    tasks: list[asyncio.Task[Any]] = []

    @app.on_startup
    async def _migrate() -> None:
        await migrate_at_start(settings)

    @app.after_startup
    async def _start() -> None:
        await ensure_events_stream(broker, settings)
        relay.start()
        if settings.resolve_on_start:
            tasks.append(asyncio.get_running_loop().create_task(resolver.run()))

    @app.on_shutdown
    async def _stop() -> None:
        await stop_tasks(tasks)
        await relay.stop()
        await publisher.close()

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    app.context.set_global("compliance", service)
    observe_compliance(app, broker, settings, engine=engine, service=service, relay=relay)
    return app


def _invalidator(gatherer: StateGatherer, controls: Controls) -> Callable[[NatsMessage], Awaitable[None]]:
    """Drops cached state when an event says it changed (core subscription, no acknowledgement)."""

    async def on_event(message: NatsMessage) -> None:
        try:
            _, event_type, account_id = event_type_of(message.raw_message.subject)
        except ValueError:
            return
        area = event_type.split(".", 1)[0]
        if area == "orders" and b'"source":"compliance"' in message.body:
            return  # our own orders.submitted: the sync-worker's copy did not change
        if area in ("positions", "orders", "account"):
            gatherer.invalidate(account_id)
        elif area == "trading":
            controls.forget_halt()
        elif area == "session":
            gatherer.forget_session()

    return on_event
