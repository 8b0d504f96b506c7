"""The order ledger (client_order_id -> outcome), the decision log and their events, in one transaction.

A ledger row is written (`pending` or `blocked`) together with the decision log row and the outbox
rows of its events BEFORE anything is sent; the primary key (connection, client_order_id) makes a
second submission of the same id a duplicate. After the bridge answers, the outcome is recorded,
again with its events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ibkr_common.db.engine import user_transaction
from ibkr_common.db.models import ComplianceDecisionLog, OrderLedger
from ibkr_common.envelope import EventEnvelope, jsonable
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay, stage_event

#: Ledger statuses that still wait for the broker's word.
UNRESOLVED = ("pending", "unknown", "answering")


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
    state_snapshot: dict[str, Any]
    latency_ms: Decimal | None
    decided_at: datetime

    def row(self, connection: str, owner: str) -> ComplianceDecisionLog:
        return ComplianceDecisionLog(
            user_id=owner, connection=connection, account_id=self.account_id,
            client_order_id=self.client_order_id, action=self.action[:16], decision=self.decision[:8],
            reason_codes=list(self.reason_codes), regime=self.regime, order=jsonable(self.order),
            state_snapshot=jsonable(self.state_snapshot), latency_ms=self.latency_ms, decided_at=self.decided_at,
        )


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
    (RLS); the requesting user is kept in the request/order JSON."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        relay: OutboxRelay | None,
        connection: str,
        owner: str,
    ) -> None:
        self.owner = owner
        self.sessions = sessions
        self.publisher = publisher
        self.relay = relay
        self.connection = connection

    def _stage(self, session: AsyncSession, events: Sequence[EventEnvelope]) -> None:
        for envelope in events:
            stage_event(session, self.publisher, envelope)

    def _wake(self, events: Sequence[EventEnvelope]) -> None:
        if events and self.relay is not None:
            self.relay.wake()

    async def get(self, client_order_id: str) -> LedgerEntry | None:
        """The ledger row of a client_order_id, or None."""
        async with user_transaction(self.sessions, self.owner) as session:
            row = await session.get(OrderLedger, (self.connection, client_order_id))
            return _entry(row) if row is not None else None

    async def by_order_id(self, account_id: str, order_id: str) -> LedgerEntry | None:
        """The ledger row of an IBKR order id, or None."""
        async with user_transaction(self.sessions, self.owner) as session:
            row = (
                await session.execute(
                    select(OrderLedger).where(
                        OrderLedger.connection == self.connection, OrderLedger.account_id == account_id,
                        OrderLedger.order_id == order_id,
                    )
                )
            ).scalars().first()
            return _entry(row) if row is not None else None

    async def log(self, record: DecisionRecord, events: Sequence[EventEnvelope] = ()) -> None:
        """A decision (or an answer) without a ledger change: the log row and its events."""
        async with user_transaction(self.sessions, self.owner) as session:
            session.add(record.row(self.connection, self.owner))
            self._stage(session, events)
        self._wake(events)

    async def open(
        self,
        record: DecisionRecord,
        *,
        status: str,
        request: dict[str, Any],
        result: dict[str, Any],
        events: Sequence[EventEnvelope],
    ) -> None:
        """Insert the ledger row with the decision row and events; DuplicateOrder when the id is known."""
        assert record.client_order_id is not None and record.account_id is not None
        try:
            async with user_transaction(self.sessions, self.owner) as session:
                session.add(record.row(self.connection, self.owner))
                session.add(
                    OrderLedger(
                        connection=self.connection, client_order_id=record.client_order_id,
                        user_id=self.owner, account_id=record.account_id, status=status, order_id=None,
                        request=jsonable(request), result=jsonable(result),
                        created_at=record.decided_at, updated_at=record.decided_at,
                    )
                )
                self._stage(session, events)
        except IntegrityError:
            raise DuplicateOrder(record.client_order_id) from None
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
        values: dict[str, Any] = {"status": status, "result": jsonable(result), "updated_at": now}
        if order_id is not None:
            values["order_id"] = order_id
        if request is not None:
            values["request"] = jsonable(request)
        where = [OrderLedger.connection == self.connection, OrderLedger.client_order_id == client_order_id]
        if expected is not None:
            where.append(OrderLedger.status == expected)
        async with user_transaction(self.sessions, self.owner) as session:
            changed = await session.execute(update(OrderLedger).where(*where).values(**values))
            if expected is not None and not getattr(changed, "rowcount", 0):
                return False
            if decision is not None:
                session.add(decision.row(self.connection, self.owner))
            self._stage(session, events)
        self._wake(events)
        return True

    async def claim(self, client_order_id: str, expected: str, new: str, now: datetime) -> bool:
        """Move a row from `expected` to `new` status; False when another request got there first."""
        async with user_transaction(self.sessions, self.owner) as session:
            result = await session.execute(
                update(OrderLedger)
                .where(
                    OrderLedger.connection == self.connection, OrderLedger.client_order_id == client_order_id,
                    OrderLedger.status == expected,
                )
                .values(status=new, updated_at=now)
            )
            return bool(getattr(result, "rowcount", 0))

    async def unresolved(self, now: datetime, max_age: timedelta) -> list[LedgerEntry]:
        """Rows left `pending` or `unknown` (a crash or a lost answer), younger than `max_age`."""
        async with user_transaction(self.sessions, self.owner) as session:
            rows = (
                await session.execute(
                    select(OrderLedger).where(
                        OrderLedger.connection == self.connection, OrderLedger.status.in_(UNRESOLVED),
                        OrderLedger.created_at >= now - max_age,
                    ).order_by(OrderLedger.created_at)
                )
            ).scalars().all()
            return [_entry(r) for r in rows]
