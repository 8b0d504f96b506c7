"""Helpers shared by the audit tests: events, publishing with retries, waiting for counts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ibkr_audit.store import AuditStore
from ibkr_common.db.engine import make_engine
from ibkr_common.envelope import EventEnvelope, new_event
from ibkr_common.subjects import Subjects


def event(conn: str, event_type: str = "gateway.call", *, account_id: str | None = None,
          payload: dict[str, Any] | None = None, occurred_at: datetime | None = None) -> EventEnvelope:
    """A valid envelope of `conn`."""
    return new_event(
        event_type, conn=conn, environment="paper", source="tests", occurred_at=occurred_at or datetime.now(UTC),
        payload=payload if payload is not None else {"method": "GET", "path": "/iserver/accounts", "status": 200},
        account_id=account_id,
    )


async def publish(js: JetStreamContext, stream: str, envelope: EventEnvelope, *, msg_id: str | None = None,
                  retry_s: float = 60.0) -> None:
    """Publish one envelope with ack, retrying (same Nats-Msg-Id) while the server is away."""
    subject = Subjects(envelope.conn).event(envelope.type, envelope.account_id)
    await publish_raw(js, stream, subject, envelope.to_bytes(), msg_id or str(envelope.event_id), retry_s=retry_s)


async def publish_raw(js: JetStreamContext, stream: str, subject: str, data: bytes, msg_id: str | None = None,
                      *, retry_s: float = 60.0) -> None:
    """Publish bytes with ack, retrying until acknowledged or `retry_s` passed."""
    deadline = time.monotonic() + retry_s
    headers = {"Nats-Msg-Id": msg_id or uuid.uuid4().hex}
    while True:
        try:
            await js.publish(subject, data, headers=headers, stream=stream, timeout=2.0)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `check` until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def admin_url_of(postgres_admin_url: str, app_url: str) -> str:
    """Superuser URL of the database an app-role URL points at (to bypass the append-only trigger)."""
    database = make_url(app_url).database
    return make_url(postgres_admin_url).set(drivername="postgresql+psycopg", database=database).render_as_string(
        hide_password=False
    )


def admin_sql(url: str, *statements: str) -> None:
    """Run statements as the admin (autocommit), e.g. to tamper with the append-only log in tests."""
    engine = create_engine(url.replace("+aiosqlite", ""), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


async def stored(url: str) -> int:
    """How many events the audit log at `url` holds."""
    engine = make_engine(url)
    try:
        return await AuditStore(engine).count()
    finally:
        await engine.dispose()
