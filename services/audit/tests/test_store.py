"""The store on PostgreSQL and SQLite: tampering and deletion are detected; export writes files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from ibkr_audit.consumer import parse_message
from ibkr_audit.store import AuditStore
from ibkr_common.db.engine import make_engine
from ibkr_common.envelope import new_event

from .audit_helpers import admin_sql, admin_url_of

pytestmark = pytest.mark.connected

T0 = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def parsed(n: int, start: int = 0) -> list[Any]:
    out = []
    for i in range(start, start + n):
        env = new_event("orders.filled", conn="paper", environment="paper", source="t",
                        occurred_at=T0 + timedelta(minutes=i), account_id="DU1234567", payload={"i": i})
        env = env.model_copy(update={"event_id": uuid.uuid5(uuid.NAMESPACE_URL, f"audit-test-{i}")})
        row, _ = parse_message("ibkr.paper.events.orders.DU1234567.filled", env.to_bytes(), i + 1)
        out.append(row)
    return out


@pytest.fixture(params=["postgres", "sqlite"])
def backend(request: pytest.FixtureRequest, fresh_pg: str, sqlite_url: str, postgres_admin_url: str) -> tuple[str, str]:
    """(app URL, admin URL able to bypass the append-only trigger)."""
    if request.param == "postgres":
        return fresh_pg, admin_url_of(postgres_admin_url, fresh_pg)
    return sqlite_url, sqlite_url


def disable_guard(admin_url: str) -> list[str]:
    if admin_url.startswith("sqlite"):
        return ["DROP TRIGGER ibkr_trading_activity_log_no_update", "DROP TRIGGER ibkr_trading_activity_log_no_delete"]
    return ["ALTER TABLE ibkr_trading_activity_log DISABLE TRIGGER ibkr_trading_activity_log_append_only"]


async def test_batches_are_gap_free_and_deduplicated(backend: tuple[str, str]) -> None:
    engine = make_engine(backend[0])
    store = AuditStore(engine)
    batch = parsed(10)
    out = await store.write_batch(batch + batch[:3], [])
    assert (out.stored, out.duplicates, out.last_seq) == (10, 3, 10)
    out = await store.write_batch(parsed(5, start=8), [])
    assert (out.stored, out.duplicates, out.last_seq) == (3, 2, 13)
    result = await store.verify()
    assert result.ok and result.events_checked == 13 and result.last_seq == 13
    await engine.dispose()


async def test_awkward_text_is_stored_exactly_as_received(backend: tuple[str, str]) -> None:
    # COPY's text format escapes backslash, tab, newline and CR; a pretty-printed envelope keeps its bytes.
    env = new_event("orders.filled", conn="paper", environment="paper", source="t\\src", occurred_at=T0,
                    user_id="tab\there", payload={"note": 'quote " back\\slash \\N tab\t nl\n cr\r', "é": "✓"})
    pretty = json.dumps(env.model_dump(mode="json"), indent=2, ensure_ascii=False).encode()
    rows = [parse_message("ibkr.paper.events.orders.filled", data, None)[0] for data in (env.to_bytes(), pretty)]
    rows[1] = replace(rows[1], event_id=str(uuid.uuid4()))
    engine = make_engine(backend[0])
    store = AuditStore(engine)
    assert (await store.write_batch(rows, [])).stored == 2
    with create_engine(backend[1].replace("+aiosqlite", "").replace("+psycopg", "")).connect() as conn:
        stored = conn.execute(text("SELECT envelope, user_id, source, account_id, stream_seq FROM "
                                   "ibkr_trading_activity_log ORDER BY seq")).all()
    assert [r.envelope for r in stored] == [rows[0].envelope, rows[1].envelope]
    assert {(r.user_id, r.source, r.account_id, r.stream_seq) for r in stored} == {("tab\there", "t\\src", None, None)}
    assert "\n  " in stored[1].envelope
    assert (await store.verify()).ok
    await engine.dispose()


async def test_the_log_refuses_updates_and_deletes(backend: tuple[str, str]) -> None:
    engine = make_engine(backend[0])
    await AuditStore(engine).write_batch(parsed(2), [])
    for statement in ("UPDATE ibkr_trading_activity_log SET type = 'x'", "DELETE FROM ibkr_trading_activity_log"):
        with pytest.raises(Exception):  # noqa: B017 (driver-specific error types)
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    await engine.dispose()


async def test_verify_reports_the_first_tampered_row(backend: tuple[str, str]) -> None:
    url, admin = backend
    engine = make_engine(url)
    store = AuditStore(engine)
    await store.write_batch(parsed(50), [])
    admin_sql(admin, *disable_guard(admin),
              "UPDATE ibkr_trading_activity_log SET envelope = replace(envelope, 'filled', 'cancelled') WHERE seq = 18")
    result = await store.verify()
    assert not result.ok and result.first_bad_seq == 18 and result.events_checked == 17
    await engine.dispose()


async def test_verify_reports_a_deleted_row(backend: tuple[str, str]) -> None:
    url, admin = backend
    engine = make_engine(url)
    store = AuditStore(engine)
    await store.write_batch(parsed(30), [])
    admin_sql(admin, *disable_guard(admin), "DELETE FROM ibkr_trading_activity_log WHERE seq = 9")
    result = await store.verify()
    assert not result.ok and result.first_bad_seq == 9 and "missing" in (result.problem or "")
    # Removing the newest rows is seen by the process that stored them.
    admin_sql(admin, "DELETE FROM ibkr_trading_activity_log WHERE seq >= 8")
    result = await store.verify()
    assert not result.ok and result.first_bad_seq == 8
    await engine.dispose()


async def test_verify_in_chunks_and_from_a_sequence(backend: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import ibkr_audit.store as store_module

    monkeypatch.setattr(store_module, "VERIFY_CHUNK", 7)
    engine = make_engine(backend[0])
    store = AuditStore(engine)
    for start in range(0, 60, 20):
        await store.write_batch(parsed(20, start), [])
    assert (await store.verify()).events_checked == 60
    result = await store.verify(from_seq=41)
    assert result.ok and result.events_checked == 20
    await engine.dispose()


async def test_export_jsonl_and_csv(backend: tuple[str, str], tmp_path: Path) -> None:
    url = backend[0]
    engine = make_engine(url)
    await AuditStore(engine).write_batch(parsed(10), [])
    await engine.dispose()
    since = (T0 + timedelta(minutes=3)).isoformat()
    until = (T0 + timedelta(minutes=7)).isoformat()
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"export.{fmt}"
        done = subprocess.run(
            [sys.executable, "-m", "ibkr_audit.cli", "export", "--since", since, "--until", until, "--format", fmt,
             "--output", str(out)],
            env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "exported 4 events" in done.stderr
        if fmt == "jsonl":
            lines = [json.loads(line) for line in out.read_text().splitlines()]
            assert [e["payload"]["i"] for e in lines] == [3, 4, 5, 6]
            assert [e["seq"] for e in lines] == [4, 5, 6, 7]
        else:
            rows = list(csv.DictReader(out.open()))
            assert [json.loads(r["payload"])["i"] for r in rows] == [3, 4, 5, 6]
            assert rows[0]["type"] == "orders.filled" and rows[0]["account_id"] == "DU1234567"


def anchor_of(rows: list[Any], stream_seqs: list[int]) -> Any:
    """A stream anchor whose newest acknowledged messages are those `rows` came from (newest first)."""
    from ibkr_audit.anchor import AckedMessage, StreamAnchor

    return StreamAnchor("S", "audit", max(stream_seqs), tuple(AckedMessage(s, rows[s - 1]) for s in stream_seqs))


async def test_the_stream_anchor_sees_the_newest_rows_cut_off(backend: tuple[str, str]) -> None:
    url, admin = backend
    engine = make_engine(url)
    rows = parsed(30)
    await AuditStore(engine).write_batch(rows, [])
    admin_sql(admin, *disable_guard(admin), "DELETE FROM ibkr_trading_activity_log WHERE seq >= 27")
    store = AuditStore(engine)  # a new process: it never saw rows 27..30
    assert (await store.verify()).ok  # the chain alone cannot tell
    result = await store.verify(anchor=anchor_of(rows, [30, 29, 28]))
    assert not result.ok and result.first_bad_seq == 27 and result.last_seq == 26
    assert "message 30" in (result.problem or "") and "newest rows were removed" in (result.problem or "")
    assert (await store.verify(anchor=anchor_of(rows, [26, 25]))).ok  # an anchor below the cut: fine
    await engine.dispose()


async def test_the_stream_anchor_sees_a_rewritten_chain(backend: tuple[str, str]) -> None:
    from ibkr_audit.chain import row_hash
    from ibkr_audit.store import LOG, _chain_row

    url, admin = backend
    engine = make_engine(url)
    rows = parsed(20)
    store = AuditStore(engine)
    await store.write_batch(rows, [])
    # Whoever can write the table can also recompute the (keyless) hash of the row they changed.
    async with engine.connect() as conn:
        last = _chain_row((await conn.execute(LOG.select().where(LOG.c.seq == 20))).one())
    forged = last.envelope.replace('"i":19', '"i":1900')
    new_hash = row_hash(last.prev_hash, replace(last, envelope=forged))
    admin_sql(admin, *disable_guard(admin))
    sync = create_engine(admin.replace("+aiosqlite", ""), isolation_level="AUTOCOMMIT")
    with sync.connect() as conn:
        conn.execute(text("UPDATE ibkr_trading_activity_log SET envelope = :e, hash = :h WHERE seq = 20"),
                     {"e": forged, "h": new_hash})
    sync.dispose()
    assert (await AuditStore(engine).verify()).ok
    result = await AuditStore(engine).verify(anchor=anchor_of(rows, [20, 19]))
    assert not result.ok and result.first_bad_seq == 20 and "differs" in (result.problem or "")
    await engine.dispose()
