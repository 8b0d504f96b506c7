"""The order ledger (client_order_id -> outcome), the decision log and their events, in one transaction.

A ledger row is written (`pending` or `blocked`) together with the decision log row and the outbox
rows of its events, and committed, BEFORE anything is sent; the primary key (connection,
client_order_id) makes a second submission of the same id a duplicate. When the bridge answers,
the outcome is recorded with its events in one committed transaction before the caller gets its
answer: a crash can leave a row `pending` only while the order is on its way, and such rows are
resolved by cOID (`bridge.orders.lookup`), never by sending again.

Every transaction is SQLAlchemy Core on the service's one async engine (aiosqlite runs SQLite in
its own thread; psycopg is asynchronous). On PostgreSQL, psycopg prepares the statements it sees
repeatedly on a connection by itself (its `prepare_threshold`, 5 executions by default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ibkr_common.db.models import ComplianceDecisionLog, OrderLedger, OutboxEvent
from ibkr_common.db.types import RawJson
from ibkr_common.envelope import EventEnvelope, jsonable
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay, outbox_row

#: The tables, written with Core statements (no unit of work, no objects to keep in step).
LEDGER = OrderLedger.__table__
DECISIONS = ComplianceDecisionLog.__table__
OUTBOX = OutboxEvent.__table__
#: The inserts, built once (each execution passes its rows as parameters).
INSERT_LEDGER, INSERT_DECISION, INSERT_OUTBOX = insert(LEDGER), insert(DECISIONS), insert(OUTBOX)
#: Ledger statuses that still wait for the broker's word.
UNRESOLVED = ("pending", "unknown", "answering")
#: A send that certainly never reached the gateway (no bridge listened, the bridge refused before sending,
#: or the resolution proved it absent): nothing final, the same id with the same body is decided and sent again.
NOT_SENT = "not_sent"
#: The status of a row whose question waits for the user (`orders.confirm` answers it).
ASKING = "confirmation_required"
#: Statuses whose order is, or may be, at the gateway: it holds buying power until the synced state shows it.
HOLDING = ("pending", "unknown", "answering", "confirmation_required", "submitted")
#: Row Level Security on PostgreSQL: the transaction's user (as `ibkr_common.db.engine.user_transaction`).
_SET_USER = text("SELECT set_config('app.user_id', :user_id, true)")


class DuplicateOrder(Exception):
    """The client_order_id is already in the ledger."""


@dataclass
class DecisionRecord:
    """One row of `trading_compliance_log`."""

    account_id: str | None
    client_order_id: str | None
    action: str
    decision: str
    reason_codes: list[str]
    regime: str | None
    order: dict[str, Any]
    state_snapshot: dict[str, Any] | RawJson
    latency_ms: Decimal | None
    decided_at: datetime

    def row(self, connection: str, owner: str) -> dict[str, Any]:
        """The columns of its `trading_compliance_log` row."""
        return {
            "user_id": owner, "connection": connection, "account_id": self.account_id,
            "client_order_id": self.client_order_id, "action": self.action[:16], "decision": self.decision[:8],
            "reason_codes": list(self.reason_codes), "regime": self.regime, "order": jsonable(self.order),
            "state_snapshot": self.state_snapshot if isinstance(self.state_snapshot, RawJson)
            else jsonable(self.state_snapshot),
            "latency_ms": self.latency_ms,
            "decided_at": self.decided_at,
        }


@dataclass(frozen=True)
class LedgerEntry:
    """A ledger row as read."""

    client_order_id: str
    user_id: str
    account_id: str
    status: str
    order_id: str | None
    request: dict[str, Any]
    result: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _entry(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(row.client_order_id, row.user_id, row.account_id, row.status, row.order_id,
                       dict(row.request or {}), dict(row.result or {}), row.created_at, row.updated_at)


class Ledger:
    """Reads and writes compliance's tables of one connection, under the connection owner's user id
    (RLS); the requesting user is kept in the request/order JSON. Each method is one transaction,
    committed before it returns."""

    def __init__(
        self, engine: AsyncEngine, publisher: EventPublisher, relay: OutboxRelay | None, connection: str,
        owner: str,
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.relay = relay
        self.connection = connection
        self.owner = owner
        self._postgres = engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction under the owner (RLS on PostgreSQL): committed on exit, rolled back on error."""
        async with self.engine.begin() as connection:
            if self._postgres:
                await connection.execute(_SET_USER, {"user_id": self.owner})
            yield connection

    async def _write(self, connection: AsyncConnection, record: DecisionRecord | None,
                     events: Sequence[EventEnvelope]) -> None:
        """The decision row and the events' outbox rows (one executemany for the events)."""
        if record is not None:
            await connection.execute(INSERT_DECISION, record.row(self.connection, self.owner))
        if events:
            await connection.execute(INSERT_OUTBOX, [outbox_row(self.publisher, e) for e in events])

    def _wake(self, events: Sequence[EventEnvelope]) -> None:
        if events and self.relay is not None:
            self.relay.wake()

    async def get(self, client_order_id: str) -> LedgerEntry | None:
        """The ledger row of a client_order_id, or None."""
        async with self._transaction() as connection:
            row = (await connection.execute(
                select(LEDGER).where(LEDGER.c.connection == self.connection,
                                     LEDGER.c.client_order_id == client_order_id)
            )).first()
        return _entry(row) if row is not None else None

    async def by_order_id(self, account_id: str, order_id: str) -> LedgerEntry | None:
        """The ledger row of an IBKR order id, or None."""
        async with self._transaction() as connection:
            row = (await connection.execute(
                select(LEDGER).where(LEDGER.c.connection == self.connection, LEDGER.c.account_id == account_id,
                                     LEDGER.c.order_id == order_id)
            )).first()
        return _entry(row) if row is not None else None

    async def log(self, record: DecisionRecord, events: Sequence[EventEnvelope] = ()) -> None:
        """A decision (or an answer) without a ledger change: the log row and its events."""
        async with self._transaction() as connection:
            await self._write(connection, record, events)
        self._wake(events)

    async def open(
        self,
        record: DecisionRecord,
        *,
        status: str,
        request: dict[str, Any],
        result: dict[str, Any],
        events: Sequence[EventEnvelope],
        relay_now: bool = True,
    ) -> None:
        """Insert the ledger row with the decision row and events; DuplicateOrder when the id is known.

        `relay_now` False leaves the events to the relay's next round (the outcome's record wakes it), so
        publishing them does not compete with the order's own trip to the broker.
        """
        assert record.client_order_id is not None and record.account_id is not None
        row = {
            "connection": self.connection, "client_order_id": record.client_order_id, "user_id": self.owner,
            "account_id": record.account_id, "status": status, "order_id": None, "request": jsonable(request),
            "result": jsonable(result), "created_at": record.decided_at, "updated_at": record.decided_at,
        }
        try:
            async with self._transaction() as connection:
                await connection.execute(INSERT_LEDGER, row)
                await self._write(connection, record, events)
        except IntegrityError:
            raise DuplicateOrder(record.client_order_id) from None
        if relay_now:
            self._wake(events)

    async def reopen(
        self, record: DecisionRecord, *, status: str, request: dict[str, Any], result: dict[str, Any],
        events: Sequence[EventEnvelope],
    ) -> bool:
        """A new attempt on a `not_sent` row (`pending` or `blocked`), with its decision row and events;
        False, nothing written, when the row is no longer `not_sent` (another attempt took it first)."""
        assert record.client_order_id is not None
        values = {"status": status, "request": jsonable(request), "result": jsonable(result),
                  "updated_at": record.decided_at, "order_id": None}
        async with self._transaction() as connection:
            changed = await connection.execute(update(LEDGER).where(
                LEDGER.c.connection == self.connection, LEDGER.c.client_order_id == record.client_order_id,
                LEDGER.c.status == NOT_SENT).values(values))
            if not changed.rowcount:
                return False
            await self._write(connection, record, events)
        self._wake(events)
        return True

    async def record(
        self,
        client_order_id: str,
        *,
        status: str,
        result: dict[str, Any],
        now: datetime,
        order_id: str | None = None,
        request: dict[str, Any] | None = None,
        events: Sequence[EventEnvelope] = (),
        decision: DecisionRecord | None = None,
        expected: str | None = None,
    ) -> bool:
        """Record an outcome on the ledger row, with its events (and a log row) in the same transaction,
        committed when this returns.

        With `expected`, only a row still in that status is changed (False, nothing written, otherwise).
        """
        values: dict[str, Any] = {"status": status, "result": jsonable(result), "updated_at": now}
        if order_id is not None:
            values["order_id"] = order_id
        if request is not None:
            values["request"] = jsonable(request)
        where = [LEDGER.c.connection == self.connection, LEDGER.c.client_order_id == client_order_id]
        if expected is not None:
            where.append(LEDGER.c.status == expected)
        async with self._transaction() as connection:
            changed = await connection.execute(update(LEDGER).where(*where).values(values))
            if expected is not None and not changed.rowcount:
                return False
            await self._write(connection, decision, events)
        self._wake(events)
        return True

    async def holding(self, account_id: str, since: datetime) -> list[LedgerEntry]:
        """Rows of an account opened since `since` whose order is or may be at the gateway (HOLDING)."""
        async with self._transaction() as connection:
            rows = (await connection.execute(
                select(LEDGER).where(
                    LEDGER.c.connection == self.connection, LEDGER.c.account_id == account_id,
                    LEDGER.c.status.in_(HOLDING), LEDGER.c.created_at >= since,
                )
            )).all()
        return [_entry(r) for r in rows]

    async def questions(self, account_id: str, limit: int) -> list[LedgerEntry]:
        """The account's rows waiting for the user's answer to IBKR's question (`confirmation_required`),
        whoever placed them, newest question first, at most `limit` (one read-only query)."""
        async with self._transaction() as connection:
            rows = (await connection.execute(
                select(LEDGER).where(
                    LEDGER.c.connection == self.connection, LEDGER.c.account_id == account_id,
                    LEDGER.c.status == ASKING,
                ).order_by(LEDGER.c.updated_at.desc(), LEDGER.c.client_order_id).limit(limit)
            )).all()
        return [_entry(r) for r in rows]

    async def unresolved(self, now: datetime, max_age: timedelta) -> list[LedgerEntry]:
        """Rows left `pending` or `unknown` (a crash or a lost answer), younger than `max_age`."""
        async with self._transaction() as connection:
            rows = (await connection.execute(
                select(LEDGER).where(
                    LEDGER.c.connection == self.connection, LEDGER.c.status.in_(UNRESOLVED),
                    LEDGER.c.created_at >= now - max_age,
                ).order_by(LEDGER.c.created_at)
            )).all()
        return [_entry(r) for r in rows]
