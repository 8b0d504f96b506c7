"""The order ledger (client_order_id -> outcome), the decision log and their events, in one transaction.

A ledger row is written (`pending` or `blocked`) together with the decision log row and the outbox
rows of its events BEFORE anything is sent; the primary key (connection, client_order_id) makes a
second submission of the same id a duplicate. After the bridge answers, the outcome is recorded,
again with its events: at once, or for a plain `submitted` after the caller has its answer, with
the outcomes of the next moments in one transaction (`record_later`; reads of the id wait for it,
and a crash before it leaves the row `pending`, resolved by cOID).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ibkr_common.db.models import ComplianceDecisionLog, OrderLedger, OutboxEvent
from ibkr_common.db.prepared import PreparedStatement, prepared_insert
from ibkr_common.db.threaded import ThreadedDatabase
from ibkr_common.db.types import RawJson
from ibkr_common.envelope import EventEnvelope, jsonable
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay, outbox_row

log = logging.getLogger("ibkr_compliance.ledger")
#: The tables, written with Core statements (no unit of work, no objects to keep in step).
LEDGER = OrderLedger.__table__
DECISIONS = ComplianceDecisionLog.__table__
OUTBOX = OutboxEvent.__table__
#: Ledger statuses that still wait for the broker's word.
UNRESOLVED = ("pending", "unknown", "answering")


class _Statements:
    """The ledger's writes, compiled once for the database's dialect (`ibkr_common.db.prepared`)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.ledger = prepared_insert(dialect, LEDGER, [c.name for c in LEDGER.columns])
        self.decision = prepared_insert(dialect, DECISIONS, [c.name for c in DECISIONS.columns if c.name != "id"])
        self.outbox = prepared_insert(dialect, OUTBOX, [c.name for c in OUTBOX.columns if c.name != "id"])
        self._updates: dict[tuple[tuple[str, ...], bool], PreparedStatement] = {}

    def update(self, columns: tuple[str, ...], expected: bool) -> PreparedStatement:
        """UPDATE of `columns` on one row (`w_connection`, `w_client_order_id`[, `w_status`])."""
        key = (columns, expected)
        if key not in self._updates:
            where = [LEDGER.c.connection == bindparam("w_connection"),
                     LEDGER.c.client_order_id == bindparam("w_client_order_id")]
            if expected:
                where.append(LEDGER.c.status == bindparam("w_status"))
            statement = update(LEDGER).where(*where).values({name: bindparam(name) for name in columns})
            self._updates[key] = PreparedStatement(self.dialect, statement)
        return self._updates[key]


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


def _entry(row: OrderLedger) -> LedgerEntry:
    return LedgerEntry(row.client_order_id, row.user_id, row.account_id, row.status, row.order_id,
                       dict(row.request or {}), dict(row.result or {}), row.created_at, row.updated_at)


class Ledger:
    """Reads and writes compliance's tables of one connection, under the connection owner's user id
    (RLS); the requesting user is kept in the request/order JSON. Each method is one transaction run
    whole by ThreadedDatabase (the pre-send `open` at once when SQLite allows, the rest in its thread)."""

    def __init__(
        self,
        db: ThreadedDatabase,
        publisher: EventPublisher,
        relay: OutboxRelay | None,
        connection: str,
        owner: str,
        *,
        linger_s: float = 0.0,
    ) -> None:
        self.owner = owner
        self.db = db
        self.publisher = publisher
        self.relay = relay
        self.connection = connection
        self.linger_s = linger_s
        self._sql = _Statements(db.dialect)
        self._later: dict[str, asyncio.Task[bool]] = {}
        self._queued: list[tuple[str, Callable[[Any], bool], int]] = []
        self._flush: asyncio.Task[bool] | None = None

    def _write(self, cursor: Any, record: DecisionRecord | None, events: Sequence[EventEnvelope]) -> None:
        """The decision row and the events' outbox rows, as prepared statements on the DBAPI cursor."""
        if record is not None:
            self._sql.decision.execute(cursor, [record.row(self.connection, self.owner)])
        if events:
            self._sql.outbox.execute(cursor, [outbox_row(self.publisher, e) for e in events])

    def _wake(self, events: Sequence[EventEnvelope]) -> None:
        if events and self.relay is not None:
            self.relay.wake()

    async def get(self, client_order_id: str) -> LedgerEntry | None:
        """The ledger row of a client_order_id, or None (after its outcome is written, if that is under way)."""
        writing = self._later.get(client_order_id)
        if writing is not None:
            await asyncio.wait([writing])

        def work(session: Session) -> LedgerEntry | None:
            row = session.get(OrderLedger, (self.connection, client_order_id))
            return _entry(row) if row is not None else None

        return await self.db.run(self.owner, work)

    async def by_order_id(self, account_id: str, order_id: str) -> LedgerEntry | None:
        """The ledger row of an IBKR order id, or None (once the outcomes under way are written)."""
        await self.settle()

        def work(session: Session) -> LedgerEntry | None:
            row = session.execute(
                select(OrderLedger).where(
                    OrderLedger.connection == self.connection, OrderLedger.account_id == account_id,
                    OrderLedger.order_id == order_id,
                )
            ).scalars().first()
            return _entry(row) if row is not None else None

        return await self.db.run(self.owner, work)

    async def log(self, record: DecisionRecord, events: Sequence[EventEnvelope] = ()) -> None:
        """A decision (or an answer) without a ledger change: the log row and its events."""
        await self.db.run_raw(self.owner, lambda cursor: self._write(cursor, record, events))
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

        def work(cursor: Any) -> None:
            self._sql.ledger.execute(cursor, [row])
            self._write(cursor, record, events)

        try:
            await self.db.run_raw(self.owner, work, now=True)
        except IntegrityError:
            raise DuplicateOrder(record.client_order_id) from None
        if relay_now:
            self._wake(events)

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
        """Record an outcome on the ledger row, with its events (and a log row) in the same transaction.

        With `expected`, only a row still in that status is changed (False, nothing written, otherwise).
        """
        work = self._outcome(client_order_id, status=status, result=result, now=now, order_id=order_id,
                             request=request, events=events, decision=decision, expected=expected)
        written = await self.db.run_raw(self.owner, work)
        if written:
            self._wake(events)
        return written

    def _outcome(
        self, client_order_id: str, *, status: str, result: dict[str, Any], now: datetime, order_id: str | None,
        request: dict[str, Any] | None, events: Sequence[EventEnvelope], decision: DecisionRecord | None,
        expected: str | None,
    ) -> Callable[[Any], bool]:
        values: dict[str, Any] = {"status": status, "result": jsonable(result), "updated_at": now}
        if order_id is not None:
            values["order_id"] = order_id
        if request is not None:
            values["request"] = jsonable(request)
        statement = self._sql.update(tuple(values), expected is not None)
        values.update(w_connection=self.connection, w_client_order_id=client_order_id, w_status=expected)

        def work(cursor: Any) -> bool:
            changed = statement.execute(cursor, [values])
            if expected is not None and not changed:
                return False
            self._write(cursor, decision, events)
            return True

        return work

    def record_later(self, client_order_id: str, *, status: str, result: dict[str, Any], now: datetime,
                     order_id: str | None = None, request: dict[str, Any] | None = None,
                     events: Sequence[EventEnvelope] = (), expected: str | None = None) -> None:
        """`record` in the background: the caller answers at once. Outcomes of the next `linger_s` are
        written in one transaction; `get` of the id waits for it. If it fails (or the process dies
        first) the rows stay unresolved and are resolved by cOID."""
        work = self._outcome(client_order_id, status=status, result=result, now=now, order_id=order_id,
                             request=request, events=events, decision=None, expected=expected)
        self._queued.append((client_order_id, work, len(events)))
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._write_queued())
        self._later[client_order_id] = self._flush

    async def _write_queued(self) -> bool:
        if self.linger_s:
            await asyncio.sleep(self.linger_s)
        batch, self._queued, self._flush = self._queued, [], None
        try:
            written = await self.db.run_raw(self.owner, lambda cursor: [work(cursor) for _, work, _ in batch])
        except Exception:
            log.exception("%d outcomes were not recorded; they are resolved by cOID", len(batch))
            return False
        finally:
            for client_order_id, _, _ in batch:
                if self._later.get(client_order_id) is asyncio.current_task():
                    del self._later[client_order_id]
        for (client_order_id, _, _), done in zip(batch, written, strict=True):
            if not done:
                log.warning("the outcome of %s was not recorded: the row had changed", client_order_id)
        if any(count for _, _, count in batch) and self.relay is not None:
            self.relay.wake()
        return True

    async def settle(self) -> None:
        """Wait until every outcome recorded in the background is written (stop, tests)."""
        while self._later:
            await asyncio.wait(set(self._later.values()))

    async def unresolved(self, now: datetime, max_age: timedelta) -> list[LedgerEntry]:
        """Rows left `pending` or `unknown` (a crash or a lost answer), younger than `max_age`."""
        await self.settle()

        def work(session: Session) -> list[LedgerEntry]:
            rows = session.execute(
                select(OrderLedger).where(
                    OrderLedger.connection == self.connection, OrderLedger.status.in_(UNRESOLVED),
                    OrderLedger.created_at >= now - max_age,
                ).order_by(OrderLedger.created_at)
            ).scalars().all()
            return [_entry(r) for r in rows]

        return await self.db.run(self.owner, work)
