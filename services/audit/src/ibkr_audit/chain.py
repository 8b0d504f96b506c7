"""The hash chain of the audit log: pure functions, no database.

Row n stores `prev_hash` (row n-1's `hash`, or 64 zeros for row 1) and
`hash = sha256(prev_hash + canonical_row(row))`, where the canonical row is a compact JSON array
of every stored column but the hashes. Changing any column of a row, removing a row or
reordering rows breaks the chain at that row or the next, which `ChainWalker` reports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64


def format_time(value: datetime) -> str:
    """The one text form of a time inside hashes: UTC, microseconds, `Z`."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in the audit chain")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ChainRow:
    """The columns of one log row that the hash covers (plus the hashes themselves)."""

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


def canonical_row(row: ChainRow) -> str:
    """Compact JSON of the hashed columns, in a fixed order."""
    return json.dumps(
        [
            row.seq, row.event_id, row.conn, row.type, row.account_id, row.user_id, row.source,
            format_time(row.occurred_at), format_time(row.stored_at), row.stream_seq, row.envelope,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def row_hash(prev_hash: str, row: ChainRow) -> str:
    """sha256 hex of the previous hash followed by the canonical row."""
    return hashlib.sha256((prev_hash + canonical_row(row)).encode()).hexdigest()


def link(prev_seq: int, prev_hash: str, rows: list[ChainRow]) -> list[ChainRow]:
    """Number rows after `prev_seq` and chain them after `prev_hash`."""
    out: list[ChainRow] = []
    for offset, row in enumerate(rows, start=1):
        numbered = replace(row, seq=prev_seq + offset, prev_hash=prev_hash)
        prev_hash = row_hash(prev_hash, numbered)
        out.append(replace(numbered, hash=prev_hash))
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
