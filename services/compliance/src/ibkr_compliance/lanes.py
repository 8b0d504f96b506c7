"""One compliance process for every connection: a lane per connection the directory knows.

A lane is everything compliance keeps for one connection (`ibkr.<conn>`): its ledger rows and halt
switch (under the connection owner's user id), its bridge (`ibkr.<conn>.bridge.*`), its state
gatherer and caches, its instruments, its reservations, its resolver of uncertain sends and its
events (stamped with the connection's environment). `Lanes` builds the bootstrap connection's lane at
once and the others as `ConnectionDirectory` learns them, at run time; a removed connection's lane is
dropped (its resolver stopped). A change that keeps the connection's environment and owner only
replaces the connection the lane decides with (enabled, per-account settings): caches and
reservations stay.

The handlers subscribe over every connection (`ibkr.*.orders.submit`, ...) and ask `route` for the
lane of the subject a request came on, which also checks who asks (`ConnectionDirectory.require`:
NOT_FOUND for a connection not registered, FORBIDDEN for a user who does not own it) before anything
is decided, logged or sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ibkr_common.bridge_client import BridgeClient
from ibkr_common.clock import Clock
from ibkr_common.connections import Connection, ConnectionDirectory, current_connection, not_registered
from ibkr_common.events import EventPublisher
from ibkr_common.messages.orders import Decision
from ibkr_common.outbox import OutboxRelay
from ibkr_common.rpc import Rpc
from ibkr_common.subjects import Subjects, event_type_of
from ibkr_common.tasks import stop_task
from ibkr_compliance.admin import ComplianceAdmin
from ibkr_compliance.controls import Controls
from ibkr_compliance.disclosures import DisclosureCatalogue
from ibkr_compliance.instruments import Instruments
from ibkr_compliance.ledger import Ledger
from ibkr_compliance.placement import Placement
from ibkr_compliance.questions import QuestionPolicy
from ibkr_compliance.reservations import Reservations
from ibkr_compliance.resolver import Resolver
from ibkr_compliance.rules import RulesConfig
from ibkr_compliance.service import ComplianceService
from ibkr_compliance.settings import ComplianceSettings
from ibkr_compliance.state import StateGatherer

log = logging.getLogger("ibkr_compliance.lanes")
SOURCE = "compliance"
#: Longer than the bridge can still be working on an order compliance stopped waiting for (its order
#: budget, IBKR_BRIDGE_ORDER_BUDGET_S, is kept below compliance's wait, IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S).
IN_FLIGHT_MARGIN_S = 2.0
#: Told of every decision recorded: (action, decision, milliseconds to decide); metrics.
DecisionListener = Callable[[str, Decision, Decimal], None]


@dataclass(frozen=True)
class Shared:
    """What every lane shares: the broker, the database, the outbox relay, the rules."""

    broker: NatsBroker
    settings: ComplianceSettings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    relay: OutboxRelay
    rpc: Rpc
    config: RulesConfig
    disclosures: DisclosureCatalogue


class Lane:
    """Compliance for one connection."""

    def __init__(self, connection: Connection, shared: Shared) -> None:
        settings, clock = shared.settings, shared.clock
        environment = "live" if connection.environment == "live" else "paper"
        self.connection = connection
        self.subjects = subjects = Subjects(connection.id)
        self.publisher = EventPublisher(shared.broker, subjects=subjects, stream=settings.events_stream,
                                        source=SOURCE, environment=environment, clock=clock)
        self.ledger = Ledger(shared.engine, self.publisher, shared.relay, connection.id, connection.user_id)
        self.controls = Controls(shared.sessions, self.publisher, shared.relay, connection.id, connection.user_id)
        self.bridge = BridgeClient(shared.broker, subjects, timeout_s=settings.bridge_timeout_s)
        timeout_s = settings.state_timeout_ms / 1000
        max_age_s = float(shared.config.max_snapshot_age_s)
        self.instruments = Instruments(self.bridge, max(timeout_s, 5.0))
        self.gatherer = StateGatherer(shared.rpc, self.bridge, subjects, self.instruments, environment=environment,
                                      live_accounts=settings.live_accounts, restrictions=settings.restrictions,
                                      timeout_s=timeout_s, cache_s=settings.state_cache_ms / 1000,
                                      max_age_s=max_age_s)
        policy = QuestionPolicy(settings.question_policy, environment)
        self.placement = Placement(self.bridge, self.ledger, self.publisher, policy, clock,
                                   timeout_s=settings.bridge_timeout_s, max_rounds=settings.max_question_rounds)
        self.resolver = Resolver(self.ledger, self.bridge, self.placement, clock,
                                 in_flight_s=settings.bridge_timeout_s + IN_FLIGHT_MARGIN_S,
                                 spacing_s=settings.resolve_spacing_s, timeout_s=settings.bridge_timeout_s)
        self.service = ComplianceService(
            subjects=subjects, connection=connection, rpc=shared.rpc, bridge=self.bridge, ledger=self.ledger,
            controls=self.controls, gatherer=self.gatherer, instruments=self.instruments, placement=self.placement,
            publisher=self.publisher, clock=clock, config=shared.config, regime=settings.regime,
            disclosures=shared.disclosures, timeout_s=settings.bridge_timeout_s,
            submit_budget_s=settings.submit_budget_s,
            reservations=Reservations(timedelta(seconds=max_age_s + 60)), wake_resolver=self.resolver.wake,
        )
        self.admin = ComplianceAdmin(controls=self.controls, ledger=self.ledger, disclosures=shared.disclosures,
                                     gatherer=self.gatherer, publisher=self.publisher, clock=clock,
                                     config=shared.config, regime=settings.regime, connection=connection)
        self._resolving: asyncio.Task[None] | None = None

    def update(self, connection: Connection) -> None:
        """The directory's newer view of the same connection (enabled, per-account settings, gateway)."""
        self.connection = self.service.connection = self.admin.connection = connection

    def start(self) -> None:
        """Run the resolver of uncertain sends in the background."""
        if self._resolving is None:
            self._resolving = asyncio.get_running_loop().create_task(self.resolver.run(),
                                                                     name=f"resolver-{self.connection.id}")

    async def stop(self) -> None:
        """Stop the resolver; its open rows are resolved by the next lane of the connection (or process)."""
        await stop_task(self._resolving)
        self._resolving = None
        await self.publisher.close()

    def invalidate(self, area: str, account_id: str | None) -> None:
        """Drop what an event of `area` says changed."""
        if area in ("positions", "orders", "account"):
            self.gatherer.invalidate(account_id)
        elif area == "trading":
            self.controls.forget_halt()
        elif area == "session":
            self.gatherer.forget_session()


class Lanes:
    """The lanes of every connection the directory knows, kept in step with it."""

    def __init__(self, shared: Shared, directory: ConnectionDirectory) -> None:
        self.shared = shared
        self.directory = directory
        self.resolve = shared.settings.resolve_on_start
        self.running = False
        #: Told of every decision recorded, on every lane: (action, decision, milliseconds); metrics.
        self.on_decision: DecisionListener | None = None
        self._lanes: dict[str, Lane] = {}
        for connection in directory:
            self._add(connection)
        directory.on_change(self.apply)

    def __iter__(self) -> Iterator[Lane]:
        return iter(list(self._lanes.values()))

    def get(self, conn: str) -> Lane | None:
        """The lane of `conn`, or None."""
        return self._lanes.get(conn)

    def route(self, user_id: str | None = None) -> Lane:
        """The lane of the connection the request being handled came on (`ConnectionMiddleware`), for the user
        who asks.

        ServiceError NOT_FOUND (field `connection`) for a connection not served, FORBIDDEN when `user_id` does
        not own it (`ConnectionDirectory.require`)."""
        conn = current_connection()
        self.directory.require(conn, user_id)
        lane = self._lanes.get(conn)
        if lane is None:
            raise not_registered(conn)
        return lane

    def lane_of(self, conn: str) -> Lane:
        """The lane of `conn`; NOT_FOUND when there is none."""
        lane = self._lanes.get(conn)
        if lane is None:
            raise not_registered(conn)
        return lane

    def invalidate(self, subject: str, own_order: bool) -> None:
        """Drop the cached state an event on `subject` says changed, on its connection's lane
        (`own_order`: compliance's own orders.submitted, which changes nothing synced)."""
        try:
            conn, event_type, account_id = event_type_of(subject)
        except ValueError:
            return
        lane = self._lanes.get(conn)
        area = event_type.split(".", 1)[0]
        if lane is not None and not (area == "orders" and own_order):
            lane.invalidate(area, account_id)

    async def start(self) -> None:
        """Start the lanes' resolvers (and those of lanes added from now on)."""
        self.running = True
        if self.resolve:
            for lane in self:
                lane.start()

    async def stop(self) -> None:
        """Stop every lane's resolver."""
        self.running = False
        for lane in self:
            await lane.stop()

    async def apply(self, before: Connection | None, after: Connection | None) -> None:
        """The directory's listener: add, change or drop the connection's lane."""
        either = after or before
        if either is None:
            return
        conn = either.id
        lane = self._lanes.get(conn)
        if after is None:
            if lane is not None:
                del self._lanes[conn]
                await lane.stop()
                log.info("connection %s dropped", conn)
            return
        if lane is not None and (lane.connection.environment, lane.connection.user_id) == (after.environment,
                                                                                          after.user_id):
            lane.update(after)
            return
        if lane is not None:  # another environment or owner: nothing of the old lane applies
            del self._lanes[conn]
            await lane.stop()
        self._add(after)
        log.info("connection %s served (%s, %s)", conn, after.environment,
                 "enabled" if after.enabled else "not enabled")

    def _add(self, connection: Connection) -> Lane:
        lane = Lane(connection, self.shared)
        lane.service.on_decision = self._decided
        self._lanes[connection.id] = lane
        if self.running and self.resolve:
            lane.start()
        return lane

    def _decided(self, action: str, decision: Decision, latency_ms: Decimal) -> None:
        if self.on_decision is not None:
            self.on_decision(action, decision, latency_ms)
