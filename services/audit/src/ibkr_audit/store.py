"""The audit log in the database: batch writer (chain, dedupe, dead letters), queries and verification."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from psycopg.errors import UniqueViolation
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ibkr_audit.chain import GENESIS_HASH, ChainRow, ChainWalker, format_time, link
from ibkr_common.clock import Clock, SystemClock
from ibkr_common.db.models import ActivityLog, DeadLetter
from ibkr_common.messages.audit import AuditEvent, AuditQueryRequest, AuditQueryResult, AuditVerifyResult

if TYPE_CHECKING:
    from ibkr_audit.anchor import StreamAnchor

log = logging.getLogger("ibkr_audit.store")

LOG = cast(Table, ActivityLog.__table__)
DEAD = cast(Table, DeadLetter.__table__)
#: Key of the transaction-scoped advisory lock that serialises chain writers on PostgreSQL.
CHAIN_LOCK_KEY = 0x1BC2A0D1
VERIFY_CHUNK = 2000
EXPORT_CHUNK = 1000
INTEGRITY_RETRIES = 5
COLUMNS = ("seq", "event_id", "conn", "type", "account_id", "user_id", "source", "occurred_at", "stored_at",
           "stream_seq", "envelope", "prev_hash", "hash")
COPY_SQL = f"COPY ibkr_trading_activity_log ({', '.join(COLUMNS)}) FROM STDIN"


@dataclass(frozen=True, slots=True)
class DeadLetterItem:
    """A stream message that is not a valid envelope."""

    subject: str
    stream_seq: int | None
    raw: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What one committed batch did."""

    stored: int
    duplicates: int
    dead_letters: int
    last_seq: int


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _copy_field(value: str | None) -> str:
    """A text column in COPY's text format: `\\N` for null, backslash, newline, CR and tab escaped."""
    if value is None:
        return "\\N"
    if "\\" in value or "\n" in value or "\r" in value or "\t" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def copy_block(rows: list[ChainRow]) -> str:
    """The rows as the data of `COPY_SQL` (text format, columns in `COLUMNS` order)."""
    stored_at = format_time(rows[0].stored_at) if rows else ""
    lines = []
    for r in rows:
        stamp = stored_at if r.stored_at is rows[0].stored_at else format_time(r.stored_at)
        lines.append("\t".join((
            str(r.seq), _copy_field(r.event_id), _copy_field(r.conn), _copy_field(r.type), _copy_field(r.account_id),
            _copy_field(r.user_id), _copy_field(r.source), r.occurred_text or format_time(r.occurred_at), stamp,
            "\\N" if r.stream_seq is None else str(r.stream_seq), _copy_field(r.envelope), r.prev_hash, r.hash,
        )))
    lines.append("")
    return "\n".join(lines)


def _chain_row(r: Any) -> ChainRow:
    return ChainRow(
        seq=r.seq, event_id=r.event_id, conn=r.conn, type=r.type, account_id=r.account_id, user_id=r.user_id,
        source=r.source, occurred_at=r.occurred_at, stored_at=r.stored_at, stream_seq=r.stream_seq,
        envelope=r.envelope, prev_hash=r.prev_hash, hash=r.hash,
    )


def _same_event(stored: Any, expected: ChainRow) -> bool:
    """The stored row holds what audit stores for the stream message (every column from the message)."""
    fields = ("event_id", "conn", "type", "account_id", "user_id", "source", "envelope")
    return all(getattr(stored, f) == getattr(expected, f) for f in fields) and (
        format_time(stored.occurred_at) == format_time(expected.occurred_at)
    )


def to_event(r: Any) -> AuditEvent:
    """A stored row as the envelope it holds, with seq, stored_at and hash."""
    data = json.loads(r.envelope)
    data.update(seq=r.seq, stored_at=r.stored_at, hash=r.hash)
    return AuditEvent.model_validate(data)


class AuditStore:
    """Reads and writes `ibkr_trading_activity_log` and `ibkr_audit_dead_letters`."""

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.is_postgres = engine.dialect.name == "postgresql"
        #: The highest seq this process committed: a shorter log later means rows were removed.
        self.known_last_seq = 0
        #: What the tail check at start found (first bad seq, problem): reported by every verify after.
        self.tail_problem: tuple[int, str] | None = None

    async def write_batch(self, events: list[ChainRow], dead: list[DeadLetterItem]) -> BatchOutcome:
        """Store a batch in one transaction: new events chained after the head, duplicates skipped.

        Raises on database errors (nothing is stored then); the caller retries and acks after.
        """
        for attempt in range(1, INTEGRITY_RETRIES + 1):
            try:
                async with self.engine.begin() as conn:
                    outcome = await self._write(conn, events, dead)
            except (IntegrityError, UniqueViolation):
                # Another writer raced us (e.g. a replica on SQLite, or a concurrent duplicate): redo.
                if attempt == INTEGRITY_RETRIES:
                    raise
                log.warning("unique violation while storing a batch; retrying (attempt %d)", attempt)
                continue
            self.known_last_seq = max(self.known_last_seq, outcome.last_seq)
            return outcome
        raise AssertionError("unreachable")

    async def _write(self, conn: AsyncConnection, events: list[ChainRow], dead: list[DeadLetterItem]) -> BatchOutcome:
        if self.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
        head = (await conn.execute(select(LOG.c.seq, LOG.c.hash).order_by(LOG.c.seq.desc()).limit(1))).first()
        last_seq, last_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)

        unique: dict[str, ChainRow] = {}
        for row in events:
            unique.setdefault(row.event_id, row)
        if unique and self.is_postgres:
            found = await conn.execute(
                # One array literal instead of a list bound element by element (event ids are UUIDs: no quoting).
                text("SELECT event_id FROM ibkr_trading_activity_log WHERE event_id = ANY(CAST(:ids AS text[]))"),
                {"ids": "{" + ",".join(unique) + "}"},
            )
            for (event_id,) in found:
                unique.pop(event_id, None)
        elif unique:
            found = await conn.execute(select(LOG.c.event_id).where(LOG.c.event_id.in_(list(unique))))
            for (event_id,) in found:
                unique.pop(event_id, None)
        stored_at = self.clock.now()
        rows = link(last_seq, last_hash, list(unique.values()), stored_at)
        if rows and self.is_postgres:
            await self._copy_rows(conn, rows)
        elif rows:
            await conn.execute(insert(LOG), [{c: getattr(r, c) for c in COLUMNS} for r in rows])
        new_dead = await self._dead_letters(conn, dead, stored_at)
        return BatchOutcome(
            stored=len(rows), duplicates=len(events) - len(rows), dead_letters=new_dead,
            last_seq=rows[-1].seq if rows else last_seq,
        )

    async def _copy_rows(self, conn: AsyncConnection, rows: list[ChainRow]) -> None:
        """PostgreSQL: COPY the rows in (several times faster than INSERT for a batch), as one text block."""
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with driver.cursor() as cur, cur.copy(COPY_SQL) as copy:
            await copy.write(copy_block(rows))

    async def _dead_letters(self, conn: AsyncConnection, dead: list[DeadLetterItem], now: datetime) -> int:
        if not dead:
            return 0
        by_seq: dict[int | None, DeadLetterItem] = {}
        for item in dead:
            by_seq.setdefault(item.stream_seq, item)
        known = [s for s in by_seq if s is not None]
        if known:
            found = await conn.execute(select(DEAD.c.stream_seq).where(DEAD.c.stream_seq.in_(known)))
            for (seq,) in found:
                by_seq.pop(seq, None)
        if by_seq:
            await conn.execute(
                insert(DEAD),
                [
                    {"subject": d.subject[:255], "stream_seq": d.stream_seq, "raw": d.raw, "reason": d.reason,
                     "received_at": now}
                    for d in by_seq.values()
                ],
            )
        return len(by_seq)

    async def head(self) -> tuple[int, str]:
        """The newest (seq, hash), or (0, genesis) when the log is empty."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(LOG.c.seq, LOG.c.hash).order_by(LOG.c.seq.desc()).limit(1))).first()
        return (row.seq, row.hash) if row else (0, GENESIS_HASH)

    async def count(self) -> int:
        """Rows in the activity log."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(LOG))).scalar_one())

    async def dead_letter_count(self) -> int:
        """Rows in the dead-letter table."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(DEAD))).scalar_one())

    async def query(self, req: AuditQueryRequest) -> AuditQueryResult:
        """Stored events matching the filters, newest first, one page."""
        stmt = select(LOG)
        if req.type_prefix:
            stmt = stmt.where(LOG.c.type.startswith(req.type_prefix, autoescape=True))
        if req.account_id:
            stmt = stmt.where(LOG.c.account_id == req.account_id)
        if req.conn:
            stmt = stmt.where(LOG.c.conn == req.conn)
        if req.since:
            stmt = stmt.where(LOG.c.occurred_at >= req.since)
        if req.until:
            stmt = stmt.where(LOG.c.occurred_at < req.until)
        if req.before_seq:
            stmt = stmt.where(LOG.c.seq < req.before_seq)
        stmt = stmt.order_by(LOG.c.seq.desc()).limit(req.limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        page = rows[: req.limit]
        more = len(rows) > req.limit
        return AuditQueryResult(events=[to_event(r) for r in page], next_before_seq=page[-1].seq if more else None)

    async def verify(self, from_seq: int | None = None, anchor: StreamAnchor | None = None) -> AuditVerifyResult:
        """Walk the chain in chunks: seq continuity, each row's hash, and each link.

        With `anchor` (read before the walk), also check that the newest acknowledged messages are stored.
        """
        start = from_seq or 1
        async with self.engine.connect() as conn:
            prev_hash = GENESIS_HASH
            if start > 1:
                prev = (await conn.execute(select(LOG.c.hash).where(LOG.c.seq == start - 1))).first()
                if prev is None:
                    return await self._result(conn, ChainWalker(start), f"row {start - 1} is missing", start - 1)
                prev_hash = prev.hash
            walker = ChainWalker(start, prev_hash)
            cursor = start
            while True:
                chunk = (
                    await conn.execute(
                        select(LOG).where(LOG.c.seq >= cursor).order_by(LOG.c.seq).limit(VERIFY_CHUNK)
                    )
                ).all()
                if not chunk or not walker.feed([_chain_row(r) for r in chunk]):
                    break
                cursor = chunk[-1].seq + 1
            walker.finish(self.known_last_seq)
            if walker.ok:
                found = [self.tail_problem]
                if anchor is not None:
                    found.append(await self._check_anchor(conn, anchor, walker.expected_seq))
                bad = min((f for f in found if f is not None), default=None)
                if bad is not None:
                    return await self._result(conn, walker, bad[1], bad[0])
            return await self._result(conn, walker)

    async def check_tail(self, anchor: StreamAnchor) -> tuple[int, str] | None:
        """At start, before consuming: are the newest acknowledged messages stored? Remembered if not."""
        async with self.engine.connect() as conn:
            head = (await conn.execute(select(func.max(LOG.c.seq)))).scalar()
            bad = await self._check_anchor(conn, anchor, int(head or 0) + 1)
        if bad is not None:
            self.tail_problem = (bad[0], bad[1] + " (found at start)")
        return bad

    async def _check_anchor(self, conn: AsyncConnection, anchor: StreamAnchor, next_seq: int) -> tuple[int, str] | None:
        """(first bad seq, problem) when an acknowledged message of the anchor is not stored as received.

        `next_seq` is the seq after the last row of the (valid) chain: where rows cut off the end begin.
        """
        events = {m.expected.event_id: m for m in anchor.messages if isinstance(m.expected, ChainRow)}
        dead = [m.stream_seq for m in anchor.messages if isinstance(m.expected, DeadLetterItem)]
        rows = {}
        if events:
            found = await conn.execute(select(LOG).where(LOG.c.event_id.in_(list(events))))
            rows = {r.event_id: r for r in found}
        dead_found: set[int] = set()
        if dead:
            found = await conn.execute(select(DEAD.c.stream_seq).where(DEAD.c.stream_seq.in_(dead)))
            dead_found = {int(r.stream_seq) for r in found}
        for m in anchor.messages:  # newest first
            where = f"stream {anchor.stream} message {m.stream_seq} (acknowledged by {anchor.durable})"
            if isinstance(m.expected, DeadLetterItem):
                if m.stream_seq not in dead_found:
                    return next_seq, f"{where} was a dead letter that is gone"
                continue
            row = rows.get(m.expected.event_id)
            if row is None:
                return next_seq, f"{where}, event {m.expected.event_id}, is in no row: the newest rows were removed"
            if row.stream_seq == m.stream_seq and not _same_event(row, m.expected):
                return int(row.seq), f"row {row.seq} differs from {where}"
        return None

    async def _result(
        self, conn: AsyncConnection, walker: ChainWalker, problem: str | None = None, bad: int | None = None
    ) -> AuditVerifyResult:
        head = (await conn.execute(select(LOG.c.seq, LOG.c.hash).order_by(LOG.c.seq.desc()).limit(1))).first()
        dead = int((await conn.execute(select(func.count()).select_from(DEAD))).scalar_one())
        first_bad = bad if bad is not None else walker.first_bad_seq
        return AuditVerifyResult(
            ok=first_bad is None,
            events_checked=walker.checked,
            first_bad_seq=first_bad,
            problem=problem or walker.problem,
            last_seq=head.seq if head else 0,
            last_hash=head.hash if head else None,
            dead_letters=dead,
        )

    async def export(self, since: datetime | None, until: datetime | None) -> AsyncIterator[AuditEvent]:
        """Stored events with occurred_at in [since, until), oldest first, read in chunks."""
        cursor = 0
        async with self.engine.connect() as conn:
            while True:
                stmt = select(LOG).where(LOG.c.seq > cursor)
                if since:
                    stmt = stmt.where(LOG.c.occurred_at >= since)
                if until:
                    stmt = stmt.where(LOG.c.occurred_at < until)
                rows = (await conn.execute(stmt.order_by(LOG.c.seq).limit(EXPORT_CHUNK))).all()
                if not rows:
                    return
                for r in rows:
                    yield to_event(r)
                cursor = rows[-1].seq
