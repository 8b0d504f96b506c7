"""The batch puller against a real JetStream: batches, waiting pulls, acks, statuses, late messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from ibkr_audit.puller import BatchPuller, PullError

pytestmark = pytest.mark.connected


@pytest.fixture
async def js(nats_url: str, names: Any) -> AsyncIterator[Any]:
    nc = await nats.connect(nats_url)
    context = nc.jetstream()
    await context.add_stream(StreamConfig(name=names.stream, subjects=[names.subjects]))
    await context.add_consumer(names.stream, ConsumerConfig(durable_name=names.consumer, ack_policy=AckPolicy.EXPLICIT,
                                                            ack_wait=30, max_ack_pending=5000))
    try:
        yield context
    finally:
        await context.delete_stream(names.stream)
        await nc.close()


async def publish(js: Any, names: Any, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await js.publish(f"ibkr.{names.conn}.events.gateway.call", str(i).encode(), headers={"Nats-Msg-Id": f"m{i}"})


async def test_a_backlog_comes_in_batches_in_stream_order_and_acks_stick(js: Any, names: Any, nats_url: str) -> None:
    await publish(js, names, 250)
    puller = BatchPuller(nats_url, names.stream, names.consumer, name="test-puller")
    await puller.start()
    try:
        sizes, data = [], []
        while len(data) < 250:
            batch = await puller.fetch(100, timeout=0.2)
            sizes.append(len(batch))
            data += [int(m.data) for m in batch]
            assert all(m.subject == f"ibkr.{names.conn}.events.gateway.call" and m.reply.startswith("$JS.ACK.")
                       for m in batch)
            await puller.acknowledge(batch)
        assert sizes == [100, 100, 50] and data == list(range(250))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await puller.fetch(100, timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2.0  # the waiting pull ended with the server's 408
        await puller.nc.flush()
        info = await js.consumer_info(names.stream, names.consumer)
        assert info.num_ack_pending == 0 and info.num_pending == 0 and info.delivered.stream_seq == 250
    finally:
        await puller.stop()


async def test_a_waiting_pull_returns_what_arrives_and_unacked_messages_come_back(
    js: Any, names: Any, nats_url: str
) -> None:
    puller = BatchPuller(nats_url, names.stream, names.consumer, name="test-puller")
    await puller.start()
    try:
        async def later() -> None:
            await asyncio.sleep(0.05)
            await publish(js, names, 3)

        task = asyncio.create_task(later())
        batch = await puller.fetch(100, timeout=1.0)
        await task
        assert [int(m.data) for m in batch] == [0, 1, 2]
        await puller.acknowledge(batch[:1])
        await puller.acknowledge(batch[1:2], b"+WPI")  # in progress: still pending, its ack wait restarted
        await puller.nc.flush()
    finally:
        await puller.stop()
    info = await js.consumer_info(names.stream, names.consumer)
    assert info.num_ack_pending == 2 and info.ack_floor.stream_seq == 1  # 2 and 3 are held for redelivery


async def test_an_unexpected_status_is_an_error_not_an_empty_batch(js: Any, names: Any, nats_url: str) -> None:
    puller = BatchPuller(nats_url, names.stream, "no-such-consumer", name="test-puller")
    await puller.start()
    try:
        with pytest.raises((PullError, TimeoutError)) as raised:
            await puller.fetch(10, timeout=0.3)
        assert raised.type is PullError and "404" not in str(raised.value)
    finally:
        await puller.stop()
