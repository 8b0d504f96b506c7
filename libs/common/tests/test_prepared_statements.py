"""Prepared statements on the DBAPI cursor store exactly what SQLAlchemy's Core statements store."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from ibkr_common.db.models import ComplianceDecisionLog, OrderLedger
from ibkr_common.db.prepared import PreparedStatement, prepared_insert
from ibkr_common.db.threaded import ThreadedDatabase
from ibkr_common.db.types import RawJson

pytestmark = pytest.mark.connected
NOW = datetime(2026, 12, 1, 15, 0, 0, 123456, tzinfo=UTC)
DECISIONS = ComplianceDecisionLog.__table__
LEDGER = OrderLedger.__table__
DECISION_COLUMNS = [c.name for c in DECISIONS.columns if c.name != "id"]


def _decision(user: str, cid: str, **changes: Any) -> dict[str, Any]:
    row = {"user_id": user, "connection": "paper", "account_id": None, "client_order_id": cid, "action": "submit",
           "decision": "warn", "reason_codes": ["OK", "PDT_LAST_DAY_TRADE"], "regime": "legacy_pdt",
           "order": {"side": "BUY", "limit_price": "230.05", "legs": [], "note": 'quote " é'},
           "state_snapshot": RawJson('{"positions":[{"symbol":"AAPL","qty":"10"}],"flags":{"halted":false}}'),
           "latency_ms": Decimal("1.234"), "decided_at": NOW}
    return {**row, **changes}


def _stored(db: ThreadedDatabase, user: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows as the driver returns them (text on SQLite: the bytes on disk, not SQLAlchemy's reading)."""
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        if not db.sqlite:
            cursor.execute("SELECT set_config('app.user_id', %s, false)", (user,))
        cursor.execute(sql + (" WHERE user_id = ? ORDER BY id" if db.sqlite else " WHERE user_id = %s ORDER BY id"),
                       (user,))
        rows = [tuple(r) for r in cursor.fetchall()]
        connection.rollback()
        return rows
    finally:
        connection.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_an_insert_stores_what_a_core_insert_stores(backend: str, sqlite_url: str, database_url: str) -> None:
    db = ThreadedDatabase(sqlite_url if backend == "sqlite" else database_url, inline=True)
    try:
        statement = prepared_insert(db.dialect, DECISIONS, DECISION_COLUMNS)
        await db.run("judy", lambda s: s.execute(insert(DECISIONS), [_decision("judy", "core")]))
        await db.run_raw("judy", lambda cursor: statement.execute(cursor, [_decision("judy", "prepared")]), now=True)
        columns = ", ".join(f'"{c}"' for c in DECISION_COLUMNS)
        rows = _stored(db, "judy", f"SELECT {columns} FROM trading_compliance_log")
    finally:
        db.close()
    assert len(rows) == 2
    index = DECISION_COLUMNS.index("client_order_id")
    core, prepared = ([v for i, v in enumerate(r) if i != index] for r in rows)
    assert prepared == core


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_an_update_with_an_expected_status_changes_only_that_row(
    backend: str, sqlite_url: str, database_url: str
) -> None:
    db = ThreadedDatabase(sqlite_url if backend == "sqlite" else database_url)
    ledger_row = {"connection": "paper", "client_order_id": "c-9", "user_id": "kim", "account_id": "DU1",
                  "status": "pending", "order_id": None, "request": {"q": "1"}, "result": {}, "created_at": NOW,
                  "updated_at": NOW}
    change = update(LEDGER).where(LEDGER.c.client_order_id == bindparam("w_cid"),
                                  LEDGER.c.status == bindparam("w_status")).values(
        status=bindparam("status"), order_id=bindparam("order_id"), updated_at=bindparam("updated_at"))
    try:
        statement = PreparedStatement(db.dialect, change)
        first = prepared_insert(db.dialect, LEDGER, list(ledger_row))
        await db.run_raw("kim", lambda c: first.execute(c, [ledger_row]))
        later = NOW + timedelta(seconds=2)
        values = {"w_cid": "c-9", "w_status": "pending", "status": "submitted", "order_id": "77", "updated_at": later}
        assert await db.run_raw("kim", lambda c: statement.execute(c, [values])) == 1
        assert await db.run_raw("kim", lambda c: statement.execute(c, [values])) == 0  # no longer pending
        entry = await db.run("kim", lambda s: s.get(OrderLedger, ("paper", "c-9")))
    finally:
        db.close()
    assert (entry.status, entry.order_id, entry.updated_at, entry.request) == ("submitted", "77", later, {"q": "1"})


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_raw_transaction_is_whole_and_a_duplicate_is_an_integrity_error(
    backend: str, sqlite_url: str, database_url: str
) -> None:
    db = ThreadedDatabase(sqlite_url if backend == "sqlite" else database_url, inline=True)
    statement = prepared_insert(db.dialect, DECISIONS, DECISION_COLUMNS)
    ledger = prepared_insert(db.dialect, LEDGER, [c.name for c in LEDGER.columns])
    row = {"connection": "paper", "client_order_id": "dup", "user_id": "lee", "account_id": "DU1", "status": "pending",
           "order_id": None, "request": {}, "result": {}, "created_at": NOW, "updated_at": NOW}

    def both(cursor: Any) -> None:
        statement.execute(cursor, [_decision("lee", "dup")])
        ledger.execute(cursor, [row])

    try:
        await db.run_raw("lee", both, now=True)
        with pytest.raises(IntegrityError):
            await db.run_raw("lee", both, now=True)
        count = await db.run("lee", lambda s: s.query(ComplianceDecisionLog).filter_by(user_id="lee").count())
    finally:
        db.close()
    assert count == 1  # the second transaction's decision row went with its failed ledger insert


async def test_raw_transactions_carry_the_user_for_row_level_security(database_url: str) -> None:
    db = ThreadedDatabase(database_url)
    statement = prepared_insert(db.dialect, DECISIONS, DECISION_COLUMNS)
    try:
        await db.run_raw("mia", lambda c: statement.execute(c, [_decision("mia", "own")]))
        with pytest.raises(Exception, match="row-level security"):
            await db.run_raw("mia", lambda c: statement.execute(c, [_decision("mallory", "theirs")]))
    finally:
        db.close()


async def test_a_raw_write_waits_in_the_thread_while_another_writer_holds_sqlite(sqlite_url: str) -> None:
    db = ThreadedDatabase(sqlite_url, inline=True)
    statement = prepared_insert(db.dialect, DECISIONS, DECISION_COLUMNS)
    other = sqlite3.connect(make_url(sqlite_url).database or "", isolation_level=None, timeout=5)
    try:
        await db.run_raw("noor", lambda c: statement.execute(c, [_decision("noor", "first")]), now=True)
        await db.run_raw("noor", lambda c: statement.execute(c, [_decision("noor", "in the thread")]))
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction
        asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")
        await db.run_raw("noor", lambda c: statement.execute(c, [_decision("noor", "waited")]), now=True)
        count = await db.run("noor", lambda s: s.query(ComplianceDecisionLog).filter_by(user_id="noor").count())
    finally:
        other.close()
        db.close()
    assert count == 3


def test_an_insert_refuses_to_leave_out_a_column_with_a_python_default() -> None:
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("a", String),
                  Column("b", String, default="x"))
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    with pytest.raises(ValueError, match=r"t\.b has a Python-side default"):
        prepared_insert(sqlite_dialect.dialect(), table, ["a"])
    assert prepared_insert(sqlite_dialect.dialect(), table, ["a", "b"]).names == ["a", "b"]
    with pytest.raises(KeyError):
        prepared_insert(sqlite_dialect.dialect(), table, ["a", "b"]).parameters({"a": "only a"})
