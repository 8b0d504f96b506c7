import asyncio

import pytest
from sqlalchemy import update

from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.db.models import OutboxEvent
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay, stage_event
from ibkr_common.streams import ensure_stream, events_stream_config
from ibkr_common.subjects import Subjects

pytestmark = pytest.mark.connected


class JsSender:
    """Adapts a nats-py JetStream context to the publisher's sender protocol."""

    def __init__(self, js):
        self.js = js

    async def publish(self, message, subject, headers=None, *, stream=None, timeout=None):
        return await self.js.publish(subject, message, headers=headers, stream=stream, timeout=timeout or 2)


async def _stream(nats_client, run_names, suffix):
    conn = f"{run_names.conn}{suffix}"
    js = nats_client.jetstream()
    config = events_stream_config(f"{run_names.stream}_{suffix.upper()}", [f"ibkr.{conn}.events.>"])
    await ensure_stream(js, config)
    return js, conn, config.name


async def test_outbox_events_reach_the_stream_once_even_when_relayed_twice(nats_client, run_names, sqlite_url):
    js, conn, stream = await _stream(nats_client, run_names, "o")
    publisher = EventPublisher(JsSender(js), subjects=Subjects(conn), stream=stream, source="sync-worker",
                               environment="paper")
    sessions = make_sessionmaker(make_engine(sqlite_url))
    staged = [publisher.build("positions.opened", {"qty": qty}, account_id="DU1") for qty in range(1, 31)]
    async with sessions() as s, s.begin():
        for envelope in staged[:3]:
            stage_event(s, publisher, envelope)
    relay = OutboxRelay(sessions, publisher)
    assert await relay.relay_once() == 3
    assert await relay.relay_once() == 0
    async with sessions() as s, s.begin():  # a crash before marking: rows look pending again
        await s.execute(update(OutboxEvent).values(published_at=None))
    assert await relay.relay_once() == 3
    info = await js.stream_info(stream)
    assert info.state.messages == 3
    async with sessions() as s, s.begin():  # a round of many: published side by side, stored in id order
        for envelope in staged[3:]:
            stage_event(s, publisher, envelope)
    assert await relay.relay_once() == 27
    stored = [await js.get_msg(stream, seq) for seq in range(1, 31)]
    assert [m.data for m in stored] == [e.to_bytes() for e in staged]
    assert [m.headers["Nats-Msg-Id"] for m in stored if m.headers] == [str(e.event_id) for e in staged]
    await js.delete_stream(stream)


async def test_publisher_buffers_while_the_stream_is_missing_then_delivers(nats_client, run_names):
    js = nats_client.jetstream()
    conn = f"{run_names.conn}p"
    stream = f"{run_names.stream}_P"
    publisher = EventPublisher(JsSender(js), subjects=Subjects(conn), stream=stream, source="gateway-bridge",
                               environment="paper", ack_timeout_s=0.5)
    delivered_now = await publisher.publish(publisher.build("gateway.call", {"status": 200}))
    assert delivered_now is False and publisher.pending == 1
    await ensure_stream(js, events_stream_config(stream, [f"ibkr.{conn}.events.>"]))
    assert await publisher.flush(10)
    assert (await js.stream_info(stream)).state.messages == 1
    await publisher.close()
    await js.delete_stream(stream)


async def test_a_lingering_relay_publishes_a_burst_of_wakes_in_one_round(nats_client, run_names, sqlite_url):
    js, conn, stream = await _stream(nats_client, run_names, "l")
    publisher = EventPublisher(JsSender(js), subjects=Subjects(conn), stream=stream, source="compliance",
                               environment="paper")
    sessions = make_sessionmaker(make_engine(sqlite_url))
    relay = OutboxRelay(sessions, publisher, linger_s=0.2, idle_s=30)
    rounds: list[int] = []
    relay_once = relay.relay_once

    async def counted() -> int:
        published = await relay_once()
        rounds.append(published)
        return published

    relay.relay_once = counted  # type: ignore[method-assign]
    relay.start()
    await asyncio.sleep(0.05)
    for qty in range(5):  # five commits, each waking the relay, within the linger
        async with sessions() as s, s.begin():
            stage_event(s, publisher, publisher.build("orders.submitted", {"qty": qty}, account_id="DU1"))
        relay.wake()
        await asyncio.sleep(0.01)
    deadline = asyncio.get_running_loop().time() + 5
    while (await js.stream_info(stream)).state.messages < 5:
        assert asyncio.get_running_loop().time() < deadline, rounds
        await asyncio.sleep(0.05)
    await relay.stop()
    assert [n for n in rounds if n] == [5]
    await js.delete_stream(stream)
