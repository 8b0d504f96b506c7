"""The database side: one transaction per account sync (rows + outbox events), and the reads.

Writes are batched (one executemany per kind); a sync whose content hashes all match writes
nothing and stages nothing. `synced_at` of an account is also kept in memory by the syncer; the
database copy is refreshed with every change and, without changes, every `synced_at_heartbeat_s`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ibkr_common.db.engine import user_transaction
from ibkr_common.db.models import AccountInfo, Order, Position
from ibkr_common.events import EventPublisher
from ibkr_common.messages.sync import AccountView, OrderView, PositionView
from ibkr_common.outbox import stage_event
from ibkr_sync_worker.diff import (
    AccountPlan,
    Event,
    OrderPlan,
    PositionPlan,
    Stored,
    diff_account,
    diff_orders,
    diff_positions,
)
from ibkr_sync_worker.normalize import (
    FINAL_STATUSES,
    OrderRecord,
    PositionRecord,
    order_from_row,
    position_from_row,
)
from ibkr_sync_worker.normalize_account import AccountRecord, account_from_row

CHUNK = 500
POSITION_FIELDS = [c for c in PositionRecord.__dataclass_fields__]
ORDER_FIELDS = [c for c in OrderRecord.__dataclass_fields__]
ACCOUNT_FIELDS = [c for c in AccountRecord.__dataclass_fields__]


@dataclass
class AccountSnapshot:
    """What the broker said about one account in this sync; None parts were not read (or failed)."""

    account_id: str
    account: AccountRecord | None = None
    account_raw: dict[str, Any] | None = None
    positions: list[PositionRecord] | None = None
    positions_complete: bool = False
    orders: dict[str, tuple[OrderRecord, bool]] | None = None


@dataclass
class ApplyResult:
    account_id: str
    positions: PositionPlan = field(default_factory=PositionPlan)
    orders: OrderPlan = field(default_factory=OrderPlan)
    account: AccountPlan = field(default_factory=AccountPlan)
    heartbeat: bool = False
    events: int = 0

    @property
    def rows_written(self) -> int:
        return self.positions.writes + self.orders.writes + self.account.writes + int(self.heartbeat)


class SyncStore:
    """Reads and writes the sync-worker's tables for one connection and user."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        *,
        connection: str,
        user_id: str,
        heartbeat_s: int = 300,
        account_move: Decimal | None = None,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.connection = connection
        self.user_id = user_id
        self.heartbeat_s = heartbeat_s
        self.account_move = account_move
        self._announced: dict[str, AccountRecord] = {}  # the summary as last announced, per account

    # ---- writing -------------------------------------------------------------------------------

    async def apply(self, snap: AccountSnapshot, now: datetime, marks: dict[str, datetime]) -> ApplyResult:
        """Diff one account against the database and write the difference with its events, atomically."""
        result = ApplyResult(snap.account_id)
        events: list[Event] = []
        async with user_transaction(self.sessions, self.user_id) as session:
            if snap.positions is not None:
                previous = await self._stored_positions(session, snap.account_id)
                result.positions = diff_positions(previous, snap.positions, snap.positions_complete)
                await self._write_positions(session, snap.account_id, result.positions, now)
                events += result.positions.events
            if snap.orders:
                previous_orders = await self._stored_orders(session, list(snap.orders))
                result.orders = diff_orders(previous_orders, snap.orders, now)
                await self._write_orders(session, result.orders, now)
                events += result.orders.events
            stored_account = await self._stored_account(session, snap.account_id)
            if snap.account is not None:
                if stored_account is not None:
                    self._announced.setdefault(snap.account_id, stored_account.record)
                result.account = diff_account(stored_account, snap.account, self._announced.get(snap.account_id),
                                              self.account_move)
                if result.account.event is not None:
                    events.append(result.account.event)
            await self._write_account(session, snap, result, stored_account, now, marks)
            for event in events:
                envelope = self.publisher.build(
                    event.type, event.payload, account_id=snap.account_id, user_id=self.user_id
                )
                stage_event(session, self.publisher, envelope)
            result.events = len(events)
        if result.account.event is not None and snap.account is not None:
            self._announced[snap.account_id] = snap.account
        return result

    async def _stored_positions(self, session: AsyncSession, account_id: str) -> dict[int, Stored]:
        cols = [getattr(Position, name) for name in POSITION_FIELDS]
        rows = await session.execute(
            select(Position.id, Position.content_hash, *cols).where(
                Position.connection == self.connection, Position.account_id == account_id
            )
        )
        out: dict[int, Stored] = {}
        for row in rows.mappings():
            out[int(row["conid"])] = Stored(row["id"], position_from_row(dict(row)), row["content_hash"])
        return out

    async def _write_positions(self, session: AsyncSession, account_id: str, plan: PositionPlan, now: datetime) -> None:
        base = {"user_id": self.user_id, "connection": self.connection}
        if plan.inserts:
            rows = [{**base, **p.columns(), "content_hash": p.content_hash(), "opened_at": now, "synced_at": now,
                     "updated_at": now} for p in plan.inserts]
            for i in range(0, len(rows), CHUNK):
                await session.execute(insert(Position), rows[i : i + CHUNK])
        if plan.updates:
            rows = [{"id": key, **p.columns(), "content_hash": p.content_hash(), "synced_at": now, "updated_at": now}
                    for key, p in plan.updates]
            for i in range(0, len(rows), CHUNK):
                await session.execute(update(Position), rows[i : i + CHUNK])
        if plan.closes:
            ids = [key for key, _ in plan.closes]
            for i in range(0, len(ids), CHUNK):
                await session.execute(delete(Position).where(Position.id.in_(ids[i : i + CHUNK])))

    async def _stored_orders(self, session: AsyncSession, order_ids: list[str]) -> dict[str, Stored]:
        cols = [getattr(Order, name) for name in ORDER_FIELDS]
        out: dict[str, Stored] = {}
        for i in range(0, len(order_ids), CHUNK):
            rows = await session.execute(
                select(Order.id, Order.content_hash, Order.status_history, *cols).where(
                    Order.connection == self.connection, Order.order_id.in_(order_ids[i : i + CHUNK])
                )
            )
            for row in rows.mappings():
                out[row["order_id"]] = Stored(
                    row["id"], order_from_row(dict(row)), row["content_hash"],
                    {"status_history": row["status_history"]},
                )
        return out

    async def _write_orders(self, session: AsyncSession, plan: OrderPlan, now: datetime) -> None:
        base = {"user_id": self.user_id, "connection": self.connection}
        if plan.inserts:
            rows = [{**base, **o.columns(), "status_history": history, "origin": "broker",
                     "content_hash": o.content_hash(), "submitted_at": None, "synced_at": now, "updated_at": now}
                    for o, history in plan.inserts]
            for i in range(0, len(rows), CHUNK):
                await session.execute(insert(Order), rows[i : i + CHUNK])
        if plan.updates:
            rows = [{"id": key, **o.columns(), "status_history": history, "content_hash": o.content_hash(),
                     "synced_at": now, "updated_at": now} for key, o, history in plan.updates]
            for i in range(0, len(rows), CHUNK):
                await session.execute(update(Order), rows[i : i + CHUNK])

    async def _stored_account(self, session: AsyncSession, account_id: str) -> Stored | None:
        cols = [getattr(AccountInfo, name) for name in ACCOUNT_FIELDS]
        row = (
            await session.execute(
                select(AccountInfo.content_hash, AccountInfo.synced_at, AccountInfo.raw, *cols).where(
                    AccountInfo.connection == self.connection, AccountInfo.account_id == account_id
                )
            )
        ).mappings().first()
        if row is None:
            return None
        return Stored(None, account_from_row(dict(row)), row["content_hash"],
                      {"synced_at": row["synced_at"], "raw": row["raw"] or {}})

    async def _write_account(
        self, session: AsyncSession, snap: AccountSnapshot, result: ApplyResult, stored: Stored | None,
        now: datetime, marks: dict[str, datetime],
    ) -> None:
        plan = result.account
        sync_marks = {k: v.isoformat() for k, v in marks.items()}
        key = {"connection": self.connection, "account_id": snap.account_id}
        if plan.write is not None:
            raw = {"summary": snap.account_raw or {}, "sync": sync_marks}
            values = {**plan.write.columns(), "raw": raw, "content_hash": plan.write.content_hash(),
                      "synced_at": marks.get("account", now), "updated_at": now}
            if plan.insert:
                await session.execute(insert(AccountInfo), [{**key, "user_id": self.user_id, **values}])
            else:
                await session.execute(update(AccountInfo), [{**key, **values}])
            return
        if stored is None:
            return
        changed = result.positions.writes or result.orders.writes
        last = stored.extra["synced_at"]
        due = self.heartbeat_s > 0 and (now - last).total_seconds() >= self.heartbeat_s
        if changed or due:
            raw = dict(stored.extra["raw"])
            raw["sync"] = {**(raw.get("sync") or {}), **sync_marks}
            values = {"raw": raw}
            if "account" in marks:
                values["synced_at"] = marks["account"]
            await session.execute(update(AccountInfo), [{**key, **values}])
            result.heartbeat = True

    # ---- reading -------------------------------------------------------------------------------

    async def known_accounts(self) -> list[str]:
        """Accounts this connection has synced before."""
        async with user_transaction(self.sessions, self.user_id) as session:
            rows = await session.execute(
                select(AccountInfo.account_id).where(AccountInfo.connection == self.connection)
            )
            return sorted(r[0] for r in rows)

    async def stored_marks(self, account_id: str) -> dict[str, datetime]:
        """The sync times persisted for an account (`account`, `positions`, `orders`)."""
        async with user_transaction(self.sessions, self.user_id) as session:
            row = (
                await session.execute(
                    select(AccountInfo.synced_at, AccountInfo.raw).where(
                        AccountInfo.connection == self.connection, AccountInfo.account_id == account_id
                    )
                )
            ).first()
        if row is None:
            return {}
        marks = {"account": row[0]}
        for name, value in ((row[1] or {}).get("sync") or {}).items():
            try:
                marks[name] = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                continue
        return marks

    async def positions(self, account_id: str, after: tuple[str, int] | None = None,
                        count: int | None = None) -> list[PositionView]:
        """Positions of an account by symbol (none first) then conid: those after the key `after`
        (`(symbol or "", conid)`), at most `count` (every one when None)."""
        symbol = func.coalesce(Position.symbol, "")
        async with user_transaction(self.sessions, self.user_id) as session:
            query = select(Position).where(Position.connection == self.connection, Position.account_id == account_id)
            if after is not None:
                query = query.where(tuple_(symbol, Position.conid) > tuple_(literal(after[0]), literal(after[1])))
            query = query.order_by(symbol, Position.conid)
            if count is not None:
                query = query.limit(count)
            rows = (await session.execute(query)).scalars()
            return [PositionView.model_validate(r, from_attributes=True) for r in rows]

    async def position(self, account_id: str, conid: int) -> PositionView | None:
        async with user_transaction(self.sessions, self.user_id) as session:
            row = (
                await session.execute(
                    select(Position).where(
                        Position.connection == self.connection, Position.account_id == account_id,
                        Position.conid == conid,
                    )
                )
            ).scalar_one_or_none()
            return None if row is None else PositionView.model_validate(row, from_attributes=True)

    async def orders(self, account_id: str, statuses: set[str] | None, count: int,
                     before: int | None = None) -> list[tuple[int, OrderView]]:
        """Up to `count` orders of an account, newest first by the store's key (the order rows were first
        stored in, which never changes), those with a key below `before` when given; with their keys."""
        async with user_transaction(self.sessions, self.user_id) as session:
            query = select(Order).where(Order.connection == self.connection, Order.account_id == account_id)
            if statuses is not None:
                query = query.where(Order.status.in_(sorted(statuses)))
            if before is not None:
                query = query.where(Order.id < before)
            query = query.order_by(Order.id.desc()).limit(count)
            rows = (await session.execute(query)).scalars()
            return [(r.id, OrderView.model_validate(r, from_attributes=True)) for r in rows]

    async def open_orders(self, account_id: str) -> dict[str, OrderRecord]:
        """Orders of the account stored with a status that is not final."""
        cols = [getattr(Order, name) for name in ORDER_FIELDS]
        async with user_transaction(self.sessions, self.user_id) as session:
            rows = await session.execute(
                select(*cols).where(
                    Order.connection == self.connection, Order.account_id == account_id,
                    Order.status.not_in(sorted(FINAL_STATUSES)),
                )
            )
            return {row["order_id"]: order_from_row(dict(row)) for row in rows.mappings()}

    async def account(self, account_id: str) -> AccountView | None:
        async with user_transaction(self.sessions, self.user_id) as session:
            row = (
                await session.execute(
                    select(AccountInfo).where(
                        AccountInfo.connection == self.connection, AccountInfo.account_id == account_id
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            view = AccountView.model_validate(row, from_attributes=True)
            raw = (row.raw or {}).get("summary") or {}  # the summary as last written: figures the record lacks
            return view.model_copy(update={"settled_cash": _decimal(raw.get("settled_cash")),
                                           "maintenance_margin": _decimal(raw.get("maint_margin"))})


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except ArithmeticError:
        return None
