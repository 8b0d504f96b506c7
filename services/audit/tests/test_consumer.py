"""The audit consumer against a real JetStream and PostgreSQL, through nats-py's public pull API.

Batches in stream order, acks that stick, an unknown consumer reported as an error, nothing
acknowledged while the database is away, and redelivery after a crash before the ack.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ibkr_audit.consumer import AuditConsumer, parse_batch
from ibkr_audit.store import AuditStore
from ibkr_common.db.engine import make_engine
from ibkr_common.streams import ensure_stream, events_stream_config
from ibkr_testkit.servers import free_port

from .audit_helpers import event, publish, wait_until

pytestmark = pytest.mark.connected


@pytest.fixture
async def nc(nats_url: str, names: Any) -> AsyncIterator[Client]:
    """A connection with the test's events stream, deleted afterwards."""
    client = await nats.connect(nats_url)
    await ensure_stream(client.jetstream(), events_stream_config(names.stream, [names.subjects]))
    try:
        yield client
    finally:
        await client.jetstream().delete_stream(names.stream)
        await client.close()


@pytest.fixture
async def engine(fresh_pg: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(fresh_pg)
    try:
        yield engine
    finally:
        await engine.dispose()


def consumer_of(nc: Client, engine: AsyncEngine, names: Any, **options: Any) -> AuditConsumer:
    return AuditConsumer(nc, AuditStore(engine), stream=names.stream, durable=names.consumer, **options)


async def publish_many(nc: Client, names: Any, n: int) -> list[str]:
    """Publish `n` events, 100 in flight; their event ids."""
    events = [event(names.conn, payload={"n": i}) for i in range(n)]
    js = nc.jetstream()
    for start in range(0, n, 100):
        await asyncio.gather(*(publish(js, names.stream, e) for e in events[start : start + 100]))
    return [str(e.event_id) for e in events]


async def acked_through(nc: Client, names: Any, stream_seq: int) -> None:
    """Wait until every message up to `stream_seq` is acknowledged and none is pending."""
    async def done() -> bool:
        info = await nc.jetstream().consumer_info(names.stream, names.consumer)
        return info.ack_floor.stream_seq >= stream_seq and not info.num_ack_pending

    await wait_until(done, 30, f"acks through stream seq {stream_seq}")


async def rows_of(engine: AsyncEngine) -> list[tuple[int, str, int]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT seq, event_id, stream_seq FROM ibkr_trading_activity_log ORDER BY seq")
        )
        return [(int(r[0]), str(r[1]), int(r[2])) for r in result]


async def test_a_backlog_is_stored_in_batches_in_stream_order_and_the_acks_stick(
    nc: Client, engine: AsyncEngine, names: Any
) -> None:
    ids = await publish_many(nc, names, 2500)
    consumer = consumer_of(nc, engine, names, batch_max=1000)
    await consumer.start()
    try:
        await acked_through(nc, names, 2500)
    finally:
        await consumer.stop()
    rows = await rows_of(engine)
    assert [r[0] for r in rows] == list(range(1, 2501))
    assert [r[2] for r in rows] == list(range(1, 2501))  # seq follows the stream's order
    assert [r[1] for r in rows] == ids
    s = consumer.stats
    assert (s.received, s.stored, s.duplicates, s.dead_letters) == (2500, 2500, 0, 0)
    assert 3 <= s.batches < 2500  # batched, at most batch_max per transaction

    again = consumer_of(nc, engine, names, batch_max=1000)  # a restart: the acks stuck, nothing comes back
    await again.start()
    try:
        await asyncio.sleep(0.5)
    finally:
        await again.stop()
    assert again.stats.received == 0
    info = await nc.jetstream().consumer_info(names.stream, names.consumer)
    assert info.num_pending == 0 and info.num_ack_pending == 0 and info.num_redelivered == 0


async def test_messages_of_a_crash_before_the_ack_are_redelivered_and_stored_once(
    nc: Client, engine: AsyncEngine, names: Any, nats_url: str
) -> None:
    ids = await publish_many(nc, names, 30)
    consumer = consumer_of(nc, engine, names, ack_wait_s=1.0)
    js = nc.jetstream()
    await js.add_consumer(names.stream, consumer.consumer_config())
    # A process that fetched 20 messages, committed the first 10 and died before acknowledging anything.
    crashed = await nats.connect(nats_url)
    subscription = await crashed.jetstream().pull_subscribe_bind(durable=names.consumer, stream=names.stream)
    fetched = await subscription.fetch(20, timeout=2)
    assert len(fetched) == 20
    first = parse_batch(fetched[:10])
    await consumer.store.write_batch(first.events, first.dead)
    await crashed.close()
    info = await js.consumer_info(names.stream, names.consumer)
    assert info.num_ack_pending == 20 and info.ack_floor.stream_seq == 0

    await consumer.start()
    try:
        await acked_through(nc, names, 30)
    finally:
        await consumer.stop()
    rows = await rows_of(engine)
    assert sorted(r[1] for r in rows) == sorted(ids) and [r[0] for r in rows] == list(range(1, 31))
    assert consumer.stats.stored == 20 and consumer.stats.duplicates == 10
    assert (await consumer.store.verify()).ok


async def test_nothing_is_acknowledged_while_the_database_is_away(nc: Client, names: Any) -> None:
    await publish_many(nc, names, 5)
    away = make_engine(f"postgresql+psycopg://nobody:x@127.0.0.1:{free_port()}/nothing")
    consumer = AuditConsumer(nc, AuditStore(away), stream=names.stream, durable=names.consumer, ack_wait_s=1.5,
                             retry_max_s=0.2)
    await consumer.start()
    try:
        await asyncio.sleep(3.2)  # more than twice the ack wait
        info = await nc.jetstream().consumer_info(names.stream, names.consumer)
    finally:
        await consumer.stop(timeout_s=0.5)
        await away.dispose()
    assert consumer.stats.db_retries >= 3 and consumer.stats.stored == 0
    assert info.ack_floor.stream_seq == 0 and info.num_ack_pending == 5
    assert info.num_redelivered == 0  # held "in progress" by the writer, not redelivered meanwhile


async def test_a_consumer_that_is_gone_is_an_error_not_an_empty_batch(
    nc: Client, engine: AsyncEngine, names: Any, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = consumer_of(nc, engine, names)
    await consumer.start()
    try:
        await nc.jetstream().delete_consumer(names.stream, names.consumer)
        await publish_many(nc, names, 1)
        with caplog.at_level(logging.WARNING, logger="ibkr_audit.consumer"):
            async def reported() -> bool:
                return any("fetch failed" in r.getMessage() for r in caplog.records)

            await wait_until(reported, 10, "the failed fetch in the log")
    finally:
        await consumer.stop()
    assert consumer.stats.received == 0
    assert any("ServiceUnavailableError" in r.getMessage() for r in caplog.records)
