"""ThreadedDatabase: whole transactions in a worker thread, RLS on PostgreSQL, pre-serialised JSON."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.models import ComplianceDecisionLog, Position
from ibkr_common.db.threaded import ThreadedDatabase
from ibkr_common.db.types import RawJson, dump_json

pytestmark = pytest.mark.connected
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _position(user: str, conid: int) -> Position:
    return Position(user_id=user, connection="paper", account_id="DU1234567", conid=conid, symbol="AAPL",
                    sec_type="STK", quantity=Decimal("10"), avg_cost=Decimal("1.5"), content_hash="h",
                    opened_at=NOW, synced_at=NOW, updated_at=NOW)


def _decision(user: str, snapshot: object) -> dict[str, object]:
    return {"user_id": user, "connection": "paper", "account_id": "DU1234567", "client_order_id": "c-1",
            "action": "submit", "decision": "allow", "reason_codes": ["OK"], "regime": "intraday_margin",
            "order": {"side": "BUY"}, "state_snapshot": snapshot, "latency_ms": Decimal("1.5"), "decided_at": NOW}


def test_raw_json_is_passed_through_and_the_rest_is_dumped() -> None:
    assert dump_json(RawJson('{"a":1}')) == '{"a":1}'
    assert json.loads(dump_json({"a": [1, "x"]})) == {"a": [1, "x"]}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_transaction_commits_whole_or_not_at_all(backend, sqlite_url, database_url):
    db = ThreadedDatabase(sqlite_url if backend == "sqlite" else database_url)
    try:
        await db.run("erin", lambda s: s.add(_position("erin", 4001)))

        def half_then_fail(session: Session) -> None:
            session.add(_position("erin", 4002))
            session.flush()
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await db.run("erin", half_then_fail)
        held = await db.run("erin", lambda s: s.execute(
            select(Position.conid).where(Position.conid.in_([4001, 4002]))).scalars().all())
        assert held == [4001]
    finally:
        db.close()


async def test_rls_admits_only_the_transactions_user_on_postgres(database_url):
    db = ThreadedDatabase(database_url)
    try:
        await db.run("frank", lambda s: s.add(_position("frank", 5001)))
        await db.run("grace", lambda s: s.add(_position("grace", 5002)))
        seen = await db.run("frank", lambda s: s.execute(
            select(Position.conid).where(Position.conid.in_([5001, 5002]))).scalars().all())
        assert seen == [5001]
        with pytest.raises(Exception, match="row-level security"):
            await db.run("frank", lambda s: s.add(_position("mallory", 5003)))
    finally:
        db.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_raw_json_is_stored_as_json_and_read_back_by_the_async_engine(backend, sqlite_url, database_url):
    url = sqlite_url if backend == "sqlite" else database_url
    db = ThreadedDatabase(url)
    snapshot = RawJson('{"positions":[{"symbol":"AAPL","qty":"10"}],"flags":{"halted":false}}')
    try:
        await asyncio.gather(*(
            db.run("heidi", lambda s: s.execute(insert(ComplianceDecisionLog), [_decision("heidi", snapshot)]))
            for _ in range(3)
        ))
        await db.run("heidi", lambda s: s.execute(insert(ComplianceDecisionLog), [_decision("heidi", {"plain": 1})]))
    finally:
        db.close()
    engine = make_engine(url)
    async with user_transaction(make_sessionmaker(engine), "heidi") as s:
        stored = (await s.execute(select(ComplianceDecisionLog.state_snapshot).where(
            ComplianceDecisionLog.user_id == "heidi").order_by(ComplianceDecisionLog.id))).scalars().all()
    await engine.dispose()
    assert stored[:3] == [json.loads(snapshot)] * 3
    assert stored[3] == {"plain": 1}


async def test_run_now_writes_inline_and_waits_in_the_thread_while_another_writer_holds_sqlite(sqlite_url):
    import sqlite3

    from sqlalchemy.engine import make_url

    db = ThreadedDatabase(sqlite_url, inline=True)
    try:
        await db.run_now("ivan", lambda s: s.add(_position("ivan", 6001)))
        other = sqlite3.connect(make_url(sqlite_url).database, isolation_level=None, timeout=5)
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        running = asyncio.create_task(ticker())
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        await db.run_now("ivan", lambda s: s.add(_position("ivan", 6002)))
        running.cancel()
        assert ticks >= 15  # the loop kept running while the write waited for the lock
        held = await db.run("ivan", lambda s: s.execute(
            select(Position.conid).where(Position.conid.in_([6001, 6002])).order_by(Position.conid)).scalars().all())
        assert held == [6001, 6002]
        other.close()
    finally:
        db.close()
