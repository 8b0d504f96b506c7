"""One sync schedule per connection: started when the connection appears, stopped when it is removed.

The connections come from `ibkr_common.connections.ConnectionDirectory` (the environment's bootstrap
connection plus the registry's). Each one has its own bridge client (`ibkr.<conn>.bridge.*`), store (rows
of that connection under its owner's `user_id`), event publisher (`ibkr.<conn>.events.*`, stamped with the
connection's environment), syncer and scheduler (its own interval task and triggers). One outbox relay
serves them all: an outbox row carries its subject.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ibkr_common.bridge_client import BridgeClient
from ibkr_common.clock import Clock
from ibkr_common.connections import Connection, not_registered
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay
from ibkr_common.subjects import Subjects
from ibkr_sync_worker.settings import SyncSettings
from ibkr_sync_worker.store import SyncStore
from ibkr_sync_worker.syncer import Syncer
from ibkr_sync_worker.triggers import SyncScheduler

log = logging.getLogger("ibkr_sync_worker.schedules")
SOURCE = "sync-worker"


@dataclass
class ConnectionSync:
    """Everything that syncs one connection."""

    connection: Connection
    subjects: Subjects
    publisher: EventPublisher
    store: SyncStore
    syncer: Syncer
    scheduler: SyncScheduler
    settings: SyncSettings

    @property
    def conn(self) -> str:
        return self.connection.id

    def options_level_of(self, account_id: str) -> int | None:
        """The account's option level: the registry's per-account setting, else (bootstrap connection only)
        `IBKR_OPTIONS_LEVELS`; None when unknown."""
        account = self.connection.account(account_id)
        if account is not None:
            return account.options_level
        return self.settings.options_level_of(account_id) if self.connection.bootstrap else None


class Schedules:
    """The sync schedules of every connection this service serves, by connection id."""

    def __init__(self, *, broker: NatsBroker, settings: SyncSettings, sessions: async_sessionmaker[AsyncSession],
                 relay: OutboxRelay, clock: Clock) -> None:
        self.broker = broker
        self.settings = settings
        self.sessions = sessions
        self.relay = relay
        self.clock = clock
        self._syncs: dict[str, ConnectionSync] = {}
        self._lock = asyncio.Lock()
        self.running = False
        self.closed = False  # stopped for good: later changes are ignored

    # ---- reading -----------------------------------------------------------------------------

    def get(self, conn: str) -> ConnectionSync | None:
        """The schedule of `conn`, or None when it is not served."""
        return self._syncs.get(conn)

    def require(self, conn: str) -> ConnectionSync:
        """The schedule of `conn`; ServiceError NOT_FOUND (field `connection`) when it is not served."""
        found = self._syncs.get(conn)
        if found is None:
            raise not_registered(conn)
        return found

    def __iter__(self) -> Iterator[ConnectionSync]:
        return iter(list(self._syncs.values()))

    def __len__(self) -> int:
        return len(self._syncs)

    # ---- lifecycle ---------------------------------------------------------------------------

    def build(self, connection: Connection) -> ConnectionSync:
        """The parts that sync one connection (not started)."""
        s = self.settings
        subjects = Subjects(connection.id)
        publisher = EventPublisher(self.broker, subjects=subjects, stream=s.events_stream, source=SOURCE,
                                   environment=connection.environment,  # type: ignore[arg-type]
                                   clock=self.clock)
        store = SyncStore(self.sessions, publisher, connection=connection.id, user_id=connection.user_id,
                          heartbeat_s=s.synced_at_heartbeat_s, account_move=s.account_event_move or None)
        bridge = BridgeClient(self.broker, subjects, timeout_s=s.bridge_timeout_s, priority="sync")
        syncer = Syncer(bridge, store, publisher, s, self.clock, on_committed=self.relay.wake)
        scheduler = SyncScheduler(syncer, interval_s=s.sync_interval_ms / 1000,
                                  follow_up_s=s.fill_resync_delay_ms / 1000)
        found = ConnectionSync(connection=connection, subjects=subjects, publisher=publisher, store=store,
                               syncer=syncer, scheduler=scheduler, settings=s)
        syncer.options_level_of = found.options_level_of
        return found

    async def add(self, connection: Connection) -> ConnectionSync:
        """Serve a connection: once the service runs, its schedule starts (a full sync at once)."""
        async with self._lock:
            return self.serve(connection)

    def serve(self, connection: Connection) -> ConnectionSync:
        """Serve a connection now (before the service starts: the bootstrap one; later, `add` and the
        directory's changes go through the lock)."""
        found = self.build(connection)
        self._syncs[connection.id] = found
        if self.running:
            found.scheduler.start()
            log.info("syncing connection %s (%s, user %s)", connection.id, connection.environment,
                     connection.user_id)
        return found

    async def _remove(self, conn: str) -> None:
        found = self._syncs.pop(conn, None)
        if found is None:
            return
        await found.scheduler.stop()
        await found.publisher.close()
        log.info("no longer syncing connection %s", conn)

    async def on_change(self, before: Connection | None, after: Connection | None) -> None:
        """A `ConnectionDirectory` listener: added, removed, or changed. A new owner or environment replaces
        the schedule (rows and events change hands); other changes (accounts' settings) are taken as they are."""
        async with self._lock:
            if self.closed:
                return
            if after is None:
                if before is not None:
                    await self._remove(before.id)
                return
            held = self._syncs.get(after.id)
            if held is not None and (held.connection.user_id, held.connection.environment) == (
                    after.user_id, after.environment):
                held.connection = after
                return
            if held is not None:
                await self._remove(after.id)
            self.serve(after)

    def start(self) -> None:
        """Start the schedules served so far, and each one added from now on."""
        self.running = True
        for found in self:
            found.scheduler.start()
            log.info("syncing connection %s", found.conn)

    async def stop(self) -> None:
        """Stop every schedule (a sync waited for is answered UNAVAILABLE)."""
        self.running = False
        async with self._lock:
            self.closed = True
            for conn in list(self._syncs):
                await self._remove(conn)
