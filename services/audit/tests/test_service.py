"""The audit service in-process against real NATS and PostgreSQL/SQLite: store, dedupe, dead letters, secrets."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from ibkr_audit.store import AuditStore
from ibkr_common.db.engine import make_engine
from ibkr_common.subjects import Subjects

from .audit_helpers import event, publish, publish_raw, stored, wait_until

pytestmark = pytest.mark.connected

TEST_PASSWORD = "hunter2-S3cret-pw-9f8e7d"
TEST_TOKEN = "tok_5b7d0c2e9a614f1f8f3c"
TEST_COOKIE = "JSESSIONID=0123456789abcdef0123456789abcdef"


async def request(nc: Any, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await nc.request(subject, json.dumps(body).encode(), timeout=10)
    return json.loads(reply.data)



@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
async def test_stores_every_event_once_and_verifies(
    backend: str, names: Any, nats_client: Any, start_audit: Any, fresh_pg: str, sqlite_url: str
) -> None:
    url = fresh_pg if backend == "postgres" else sqlite_url
    js = nats_client.jetstream()
    async with start_audit(url):
        events = [event(names.conn) for _ in range(120)]
        for e in events:
            await publish(js, names.stream, e)
        # The same event ids again, with other Nats-Msg-Ids so the stream's duplicate window lets them in.
        for e in events[:30]:
            await publish(js, names.stream, e, msg_id=uuid.uuid4().hex)
        await wait_until(lambda: _has(url, 120), what="120 stored events")
        verify = await request(nats_client, Subjects(names.conn).audit_verify, {})
    assert verify["ok"] is True, verify
    assert verify["result"]["ok"] is True
    assert verify["result"]["events_checked"] == 120
    assert verify["result"]["last_seq"] == 120
    assert await stored(url) == 120
    engine = make_engine(url)
    async with engine.connect() as conn:
        seqs = [r[0] for r in await conn.execute(text("SELECT seq FROM ibkr_trading_activity_log ORDER BY seq"))]
        ids = {r[0] for r in await conn.execute(text("SELECT event_id FROM ibkr_trading_activity_log"))}
    await engine.dispose()
    assert seqs == list(range(1, 121))
    assert ids == {str(e.event_id) for e in events}


async def _has(url: str, n: int) -> bool:
    return await stored(url) >= n


async def test_redelivery_after_restart_does_not_duplicate(
    names: Any, nats_client: Any, start_audit: Any, fresh_pg: str
) -> None:
    js = nats_client.jetstream()
    async with start_audit(fresh_pg):
        first = [event(names.conn) for _ in range(20)]
        for e in first:
            await publish(js, names.stream, e)
        await wait_until(lambda: _has(fresh_pg, 20), what="first 20")
    # A new consumer name reads the whole stream again: every message is a redelivery of a stored event.
    names.consumer = names.consumer + "-again"
    async with start_audit(fresh_pg):
        extra = event(names.conn, "session.tickled")
        await publish(js, names.stream, extra)
        await wait_until(lambda: _has(fresh_pg, 21), what="21 stored")
        verify = await request(nats_client, Subjects(names.conn).audit_verify, {})
    assert await stored(fresh_pg) == 21
    assert verify["result"]["ok"] is True and verify["result"]["events_checked"] == 21


async def test_invalid_messages_go_to_dead_letters_and_never_block(
    names: Any, nats_client: Any, start_audit: Any, fresh_pg: str
) -> None:
    js = nats_client.jetstream()
    subject = Subjects(names.conn).event("gateway.call")
    async with start_audit(fresh_pg):
        await publish_raw(js, names.stream, subject, b"not json at all \xff")
        await publish_raw(js, names.stream, subject, json.dumps({"type": "gateway.call"}).encode())
        other_conn = event("someone-else")
        await publish_raw(js, names.stream, subject, other_conn.to_bytes())
        good = event(names.conn)
        await publish(js, names.stream, good)
        await wait_until(lambda: _has(fresh_pg, 1), what="the valid event after the bad ones")
        await wait_until(lambda: _dead(fresh_pg, 3), what="3 dead letters")
        verify = await request(nats_client, Subjects(names.conn).audit_verify, {})
    assert verify["result"] == verify["result"] | {"ok": True, "events_checked": 1, "dead_letters": 3}
    engine = make_engine(fresh_pg)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT raw, reason, stream_seq FROM ibkr_audit_dead_letters "
                                        "ORDER BY stream_seq"))).all()
    await engine.dispose()
    assert rows[0].raw == b"not json at all \xff"
    assert "not a valid envelope" in rows[0].reason
    assert "event_id" not in rows[1].reason or "conn" in rows[1].reason
    assert "does not match the subject" in rows[2].reason
    assert len({r.stream_seq for r in rows}) == 3


async def _dead(url: str, n: int) -> bool:
    engine = make_engine(url)
    try:
        return await AuditStore(engine).dead_letter_count() >= n
    finally:
        await engine.dispose()


async def test_no_secret_is_ever_stored(names: Any, nats_client: Any, start_audit: Any, fresh_pg: str) -> None:
    js = nats_client.jetstream()
    subject = Subjects(names.conn).event("gateway.call")
    leaky = event(names.conn, payload={
        "method": "POST", "path": "/iserver/auth/ssodh/init", "status": 200,
        "password": TEST_PASSWORD, "headers": {"Cookie": TEST_COOKIE, "Authorization": f"Bearer {TEST_TOKEN}"},
        "note": f"retry with password={TEST_PASSWORD}", "password_set": True,
        "calls": [{"access_token": TEST_TOKEN}],
    })
    bad = json.dumps({"type": "gateway.call", "payload": {"password": TEST_PASSWORD, "token": TEST_TOKEN}}).encode()
    async with start_audit(fresh_pg):
        await publish(js, names.stream, leaky)
        await publish_raw(js, names.stream, subject, bad)
        await publish_raw(js, names.stream, subject, f"session_token={TEST_TOKEN} password={TEST_PASSWORD}".encode())
        await wait_until(lambda: _has(fresh_pg, 1), what="the event")
        await wait_until(lambda: _dead(fresh_pg, 2), what="dead letters")
        verify = await request(nats_client, Subjects(names.conn).audit_verify, {})
        query = await request(nats_client, Subjects(names.conn).audit_query, {"type_prefix": "gateway.call"})
    assert verify["result"]["secrets_redacted"] == 1
    engine = make_engine(fresh_pg)
    async with engine.connect() as conn:
        texts = [str(tuple(r)) for r in await conn.execute(text("SELECT * FROM ibkr_trading_activity_log"))]
        texts += [bytes(r.raw).decode(errors="replace") + r.reason
                  for r in await conn.execute(text("SELECT raw, reason FROM ibkr_audit_dead_letters"))]
    await engine.dispose()
    everything = "\n".join(texts) + json.dumps(query)
    for secret in (TEST_PASSWORD, TEST_TOKEN, TEST_COOKIE, "0123456789abcdef0123456789abcdef"):
        assert secret not in everything
    payload = query["result"]["events"][0]["payload"]
    assert payload["password"] == "[REDACTED]" and payload["password_set"] is True
    assert payload["path"] == "/iserver/auth/ssodh/init"


async def test_query_filters_and_paging(names: Any, nats_client: Any, start_audit: Any, fresh_pg: str) -> None:
    from datetime import UTC, datetime, timedelta

    js = nats_client.jetstream()
    base = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    kinds = [
        ("gateway.call", None), ("orders.filled", "DU1234567"), ("orders.submitted", "DU1234567"),
        ("positions.opened", "DU7654321"), ("session.tickled", None),
    ]
    events = [event(names.conn, t, account_id=a, occurred_at=base + timedelta(minutes=i))
              for i, (t, a) in enumerate(kinds * 5)]
    async with start_audit(fresh_pg):
        for e in events:
            await publish(js, names.stream, e)
        await wait_until(lambda: _has(fresh_pg, 25), what="25 events")
        subj = Subjects(names.conn).audit_query

        r = await request(nats_client, subj, {"type_prefix": "orders", "account_id": "DU1234567", "limit": 4})
        assert r["ok"] is True
        page1 = r["result"]
        assert [e["type"] for e in page1["events"]] == ["orders.submitted", "orders.filled"] * 2
        assert page1["events"][0]["seq"] > page1["events"][1]["seq"]
        assert page1["next_before_seq"] == page1["events"][-1]["seq"]
        r = await request(nats_client, subj, {"type_prefix": "orders", "account_id": "DU1234567", "limit": 4,
                                              "before_seq": page1["next_before_seq"]})
        page2 = r["result"]
        assert len(page2["events"]) == 4
        r = await request(nats_client, subj, {"type_prefix": "orders", "account_id": "DU1234567", "limit": 4,
                                              "before_seq": page2["next_before_seq"]})
        assert len(r["result"]["events"]) == 2 and r["result"]["next_before_seq"] is None

        window = {"since": (base + timedelta(minutes=5)).isoformat(),
                  "until": (base + timedelta(minutes=10)).isoformat()}
        r = await request(nats_client, subj, window)
        got = r["result"]["events"]
        assert len(got) == 5
        assert {e["event_id"] for e in got} == {str(e.event_id) for e in events[5:10]}
        assert got[0]["occurred_at"].startswith("2026-03-02T15:09")

        r = await request(nats_client, subj, {"type_prefix": "gateway.call", "limit": 5})
        assert len(r["result"]["events"]) == 5
        assert all(e["type"] == "gateway.call" for e in r["result"]["events"])
        assert r["result"]["events"][0]["payload"] == events[0].payload

        r = await request(nats_client, subj, {"limit": 0})
        assert r["ok"] is False and r["error"]["code"] == "VALIDATION_ERROR"
        assert any(d["field"] == "limit" for d in r["error"]["details"])
        r = await request(nats_client, subj, {"limit": 1001})
        assert r["error"]["code"] == "VALIDATION_ERROR"
        r = await request(nats_client, subj, {"since": "yesterday"})
        assert r["error"]["code"] == "VALIDATION_ERROR"
        r = await request(nats_client, Subjects(names.conn).audit_verify, {"from_seq": 10})
        assert r["result"]["ok"] is True and r["result"]["events_checked"] == 16
