"""One keeper per connection: started when the connection appears, stopped when it is removed.

The connections come from `ibkr_common.connections.ConnectionDirectory` (the environment's bootstrap
connection plus the registry's). Each keeper has its own state machine, tickle loop, row of
`ibkr_session_tracking` (keyed by the connection, under its owner's `user_id`) and its own event
publisher (`ibkr.<conn>.events.session.*`, stamped with the connection's environment). One outbox relay
serves them all: an outbox row carries its subject.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ibkr_common.bridge_client import BridgeClient
from ibkr_common.clock import Clock
from ibkr_common.connections import Connection, not_registered
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay
from ibkr_common.subjects import Subjects
from ibkr_session_keeper.gateway import SessionGateway
from ibkr_session_keeper.keeper import Keeper
from ibkr_session_keeper.settings import SessionKeeperSettings
from ibkr_session_keeper.state import Policy
from ibkr_session_keeper.store import TrackingStore

log = logging.getLogger("ibkr_session_keeper.keepers")
SOURCE = "session-keeper"


class Keepers:
    """The keepers of every connection this service serves, by connection id."""

    def __init__(self, *, broker: NatsBroker, settings: SessionKeeperSettings,
                 sessions: async_sessionmaker[AsyncSession], relay: OutboxRelay, clock: Clock,
                 policy: Callable[[], Policy]) -> None:
        self.broker = broker
        self.settings = settings
        self.sessions = sessions
        self.relay = relay
        self.clock = clock
        self.policy = policy
        self._keepers: dict[str, Keeper] = {}
        self._serving: dict[str, Connection] = {}
        self._lock = asyncio.Lock()
        self.running = False
        self.closed = False  # stopped for good: later changes are ignored

    # ---- reading -----------------------------------------------------------------------------

    def get(self, conn: str) -> Keeper | None:
        """The keeper of `conn`, or None when it is not served."""
        return self._keepers.get(conn)

    def require(self, conn: str) -> Keeper:
        """The keeper of `conn`; ServiceError NOT_FOUND (field `connection`) when the connection is not served."""
        keeper = self._keepers.get(conn)
        if keeper is None:
            raise not_registered(conn)
        return keeper

    def __iter__(self) -> Iterator[tuple[str, Keeper]]:
        return iter(list(self._keepers.items()))

    def __len__(self) -> int:
        return len(self._keepers)

    # ---- lifecycle ---------------------------------------------------------------------------

    def build(self, connection: Connection) -> Keeper:
        """A keeper for one connection (not loaded, not started)."""
        subjects = Subjects(connection.id)
        publisher = EventPublisher(self.broker, subjects=subjects, stream=self.settings.events_stream,
                                   source=SOURCE, environment=connection.environment,  # type: ignore[arg-type]
                                   clock=self.clock)
        bridge = BridgeClient(self.broker, subjects, timeout_s=self.settings.bridge_timeout_s)
        store = TrackingStore(self.sessions, connection=connection.id, user_id=connection.user_id, clock=self.clock)
        return Keeper(policy=self.policy(), bridge=SessionGateway(bridge), store=store, publisher=publisher,
                      relay=self.relay, clock=self.clock, tickle_interval_s=self.settings.tickle_interval_ms / 1000,
                      region=self.settings.gateway_region)

    async def add(self, connection: Connection) -> Keeper:
        """Serve a connection: its keeper resumes from its row and, once the service runs, starts its loop."""
        async with self._lock:
            return await self._add(connection)

    async def _add(self, connection: Connection) -> Keeper:
        keeper = self.build(connection)
        await keeper.load()
        self._keepers[connection.id] = keeper
        self._serving[connection.id] = connection
        if self.running:
            keeper.start()
            log.info("keeping the session of connection %s (%s)", connection.id, connection.environment)
        return keeper

    async def remove(self, conn: str) -> None:
        """Stop serving a connection: its loop is cancelled and what it had not written is written."""
        async with self._lock:
            await self._remove(conn)

    async def _remove(self, conn: str) -> None:
        keeper = self._keepers.pop(conn, None)
        self._serving.pop(conn, None)
        if keeper is None:
            return
        await keeper.stop()
        await keeper.publisher.close()
        log.info("no longer keeping the session of connection %s", conn)

    async def on_change(self, before: Connection | None, after: Connection | None) -> None:
        """A `ConnectionDirectory` listener: added, removed, or changed where the keeper cares (owner,
        environment: the keeper is replaced, resuming from its row)."""
        async with self._lock:
            if self.closed:
                return
            if after is None:
                if before is not None:
                    await self._remove(before.id)
                return
            held = self._serving.get(after.id)
            if held is not None and (held.user_id, held.environment) == (after.user_id, after.environment):
                self._serving[after.id] = after
                return
            if held is not None:
                await self._remove(after.id)
            await self._add(after)

    def start(self) -> None:
        """Start the loops of every connection served so far, and of each one added from now on."""
        self.running = True
        for conn, keeper in self:
            keeper.start()
            log.info("keeping the session of connection %s", conn)

    async def stop(self) -> None:
        """Stop every loop (each writes what it had not written)."""
        self.running = False
        async with self._lock:
            self.closed = True
            for conn in list(self._keepers):
                await self._remove(conn)
