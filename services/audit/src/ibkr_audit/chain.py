"""The hash chain of the audit log: pure functions, no database.

Row n stores `prev_hash` (row n-1's `hash`, or 64 zeros for row 1) and
`hash = sha256(prev_hash + canonical_row(row))`. The canonical row joins every stored column but the
hashes, in a fixed order, each written as `<length>:<text>` (`-` for null), separated by `|`.
Changing any column of a row, removing a row or reordering rows breaks the chain at that row or
the next, which `ChainWalker` reports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64


def format_time(value: datetime) -> str:
    """The one text form of a time inside hashes: UTC with microseconds, `+00:00`."""
    if value.tzinfo is UTC:
        return value.isoformat(timespec="microseconds")
    if value.tzinfo is None:
        raise ValueError("naive datetime in the audit chain")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _field(value: str | int | None) -> str:
    """A netstring-like field: `-` for null, else `<length>:<text>`; never ambiguous."""
    if value is None:
        return "-"
    text = str(value)
    return f"{len(text)}:{text}"


@dataclass(slots=True)
class ChainRow:
    """The columns of one log row that the hash covers (plus the hashes themselves).

    Not frozen (a frozen dataclass costs a `object.__setattr__` per field, twice per stored event);
    `link` returns new rows and nothing changes a row after it."""

    seq: int
    event_id: str
    conn: str
    type: str
    account_id: str | None
    user_id: str | None
    source: str
    occurred_at: datetime
    stored_at: datetime
    stream_seq: int | None
    envelope: str
    prev_hash: str = ""
    hash: str = ""
    #: `format_time(occurred_at)`, set by `link` (which formats it for the hash) for the COPY after it.
    occurred_text: str = ""


def canonical_row(row: ChainRow, stored_at: str | None = None) -> str:
    """The hashed columns in a fixed order, each length-prefixed (see `_field`)."""
    return "|".join((
        _field(row.seq), _field(row.event_id), _field(row.conn), _field(row.type), _field(row.account_id),
        _field(row.user_id), _field(row.source), _field(format_time(row.occurred_at)),
        _field(stored_at or format_time(row.stored_at)), _field(row.stream_seq), _field(row.envelope),
    ))


def row_hash(prev_hash: str, row: ChainRow, stored_at: str | None = None) -> str:
    """sha256 hex of the previous hash followed by the canonical row."""
    return hashlib.sha256((prev_hash + canonical_row(row, stored_at)).encode()).hexdigest()


def link(prev_seq: int, prev_hash: str, rows: list[ChainRow], stored_at: datetime) -> list[ChainRow]:
    """Number rows after `prev_seq`, stamp them `stored_at` and chain them after `prev_hash`.

    The same hash as `row_hash`, with the stamp's field formatted once for the whole batch.
    """
    out: list[ChainRow] = []
    seq = prev_seq
    stamp = _field(format_time(stored_at))
    sha256 = hashlib.sha256
    for r in rows:
        seq += 1
        # _field inlined: event_id, conn, type, source and envelope are never null; seq is an int.
        account, user, stream_seq = r.account_id, r.user_id, r.stream_seq
        occurred = format_time(r.occurred_at)
        canonical = (
            f"{len(str(seq))}:{seq}|{len(r.event_id)}:{r.event_id}|{len(r.conn)}:{r.conn}|{len(r.type)}:{r.type}|"
            f"{'-' if account is None else f'{len(account)}:{account}'}|"
            f"{'-' if user is None else f'{len(user)}:{user}'}|{len(r.source)}:{r.source}|"
            f"{len(occurred)}:{occurred}|{stamp}|{_field(stream_seq)}|{len(r.envelope)}:{r.envelope}"
        )
        digest = sha256((prev_hash + canonical).encode()).hexdigest()
        out.append(ChainRow(seq, r.event_id, r.conn, r.type, account, user, r.source, r.occurred_at,
                            stored_at, stream_seq, r.envelope, prev_hash, digest, occurred))
        prev_hash = digest
    return out


class ChainWalker:
    """Checks rows fed in seq order, chunk by chunk (memory bounded); remembers the first problem."""

    def __init__(self, expected_seq: int = 1, prev_hash: str = GENESIS_HASH) -> None:
        self.expected_seq = expected_seq
        self.prev_hash = prev_hash
        self.checked = 0
        self.first_bad_seq: int | None = None
        self.problem: str | None = None

    @property
    def ok(self) -> bool:
        """True while no problem was found."""
        return self.first_bad_seq is None

    def _fail(self, seq: int, problem: str) -> None:
        if self.first_bad_seq is None:
            self.first_bad_seq = seq
            self.problem = problem

    def feed(self, rows: list[ChainRow]) -> bool:
        """Check the next rows; False once a problem was found (stop walking)."""
        for row in rows:
            if not self.ok:
                return False
            if row.seq != self.expected_seq:
                self._fail(self.expected_seq, f"row {self.expected_seq} is missing (next row is {row.seq})")
                return False
            if row.prev_hash != self.prev_hash:
                self._fail(row.seq, "prev_hash does not match the previous row's hash")
                return False
            if row_hash(row.prev_hash, row) != row.hash:
                self._fail(row.seq, "hash does not match the row's content")
                return False
            self.prev_hash = row.hash
            self.expected_seq += 1
            self.checked += 1
        return True

    def finish(self, known_last_seq: int | None = None) -> None:
        """After the last chunk: rows this process stored but that are gone are a problem too."""
        if self.ok and known_last_seq is not None and known_last_seq >= self.expected_seq:
            self._fail(self.expected_seq, f"rows {self.expected_seq}..{known_last_seq} were stored but are gone")
