"""The durable pull consumer: fetch, validate, store a batch, and acknowledge only after the commit.

Built on nats-py's public JetStream pull API (`pull_subscribe_bind`, `PullSubscription.fetch`,
`Msg.ack` / `Msg.in_progress`, `Msg.metadata`). Three tasks: the fetcher fetches and parses the next
batch while the writer commits the previous one, and the acker acknowledges what was committed while
the writer goes on. A message is acknowledged only once the transaction holding its row (or its dead
letter, or the row of an earlier copy of it) committed. While the database is down the writer keeps
the batch, retries with backoff and tells JetStream the messages are in progress, so nothing is
acknowledged, lost or redelivered meanwhile; the bounded queue and `max_ack_pending` stop the fetcher.
Whatever was delivered but never acknowledged (a crash, a lost ack) is redelivered by JetStream after
the ack wait; the event id makes the redelivered copy a duplicate that is skipped, then acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NotJSMessageError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from ibkr_audit.chain import ChainRow
from ibkr_audit.redact import may_hold_secrets, redact_value
from ibkr_audit.store import AuditStore, DeadLetterItem
from ibkr_common.envelope import EventEnvelope
from ibkr_common.logs import redact as redact_text
from ibkr_common.subjects import event_type_of
from ibkr_common.tasks import stop_task

log = logging.getLogger("ibkr_audit.consumer")
#: Messages parsed between two looks at the event loop.
PARSE_SLICE = 100


@dataclass(slots=True)
class Stats:
    """Counters since start."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    secrets_redacted: int = 0
    db_retries: int = 0
    batches: int = 0


@dataclass(slots=True)
class Batch:
    """Messages fetched together, parsed."""

    msgs: list[Msg] = field(default_factory=list)
    events: list[ChainRow] = field(default_factory=list)
    dead: list[DeadLetterItem] = field(default_factory=list)
    redacted: int = 0

    def extend(self, other: Batch) -> None:
        self.msgs += other.msgs
        self.events += other.events
        self.dead += other.dead
        self.redacted += other.redacted


def _reason(exc: ValidationError) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
    return "not a valid envelope: " + "; ".join(problems)


def masked_raw(data: bytes) -> bytes:
    """The raw bytes of a dead letter, with secret-looking values masked (JSON or free text)."""
    try:
        value = json.loads(data)
    except ValueError:
        text = data.decode("utf-8", errors="replace")
        masked = redact_text(text)
        return masked.encode() if masked != text else data
    masked_value, count = redact_value(value)
    return json.dumps(masked_value, separators=(",", ":")).encode() if count else data


def parse_message(subject: str, data: bytes, stream_seq: int | None) -> tuple[ChainRow | DeadLetterItem, int]:
    """A stream message as a row to chain (secrets masked) or a dead letter; and how many values were masked."""
    try:
        envelope = EventEnvelope.model_validate_json(data)
    except ValidationError as exc:
        return DeadLetterItem(subject, stream_seq, masked_raw(data), _reason(exc)), 0
    try:
        subject_conn = event_type_of(subject)[0]
    except ValueError:
        subject_conn = None
    if subject_conn != envelope.conn:
        reason = f"envelope conn {envelope.conn!r} does not match the subject {subject!r}"
        return DeadLetterItem(subject, stream_seq, masked_raw(data), reason), 0
    masked = 0
    text = None
    if may_hold_secrets(envelope.payload):
        body: dict[str, Any] = envelope.model_dump(mode="json")
        body["payload"], masked = redact_value(body["payload"])
        if masked:
            text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    row = ChainRow(
        seq=0, event_id=str(envelope.event_id), conn=envelope.conn, type=envelope.type,
        account_id=envelope.account_id, user_id=envelope.user_id, source=envelope.source,
        occurred_at=envelope.occurred_at, stored_at=envelope.occurred_at, stream_seq=stream_seq,
        envelope=text if text is not None else data.decode(),  # validated above: store it as received
    )
    return row, masked


def stream_sequence(msg: Msg) -> int | None:
    """The message's sequence in the stream (None for a message that did not come from JetStream)."""
    try:
        return msg.metadata.sequence.stream
    except (NotJSMessageError, ValueError):
        return None


def parse_batch(msgs: list[Msg]) -> Batch:
    """Parse fetched messages into a batch."""
    batch = Batch(msgs=msgs)
    for msg in msgs:
        item, masked = parse_message(msg.subject, msg.data, stream_sequence(msg))
        if isinstance(item, DeadLetterItem):
            batch.dead.append(item)
        else:
            batch.events.append(item)
            if masked:
                batch.redacted += 1
    return batch


def durable_config(durable: str, ack_wait_s: float, max_ack_pending: int) -> ConsumerConfig:
    """Audit's durable pull consumer: every message of the stream, explicit ack, never given up on."""
    return ConsumerConfig(
        durable_name=durable,
        name=durable,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_ack_pending=max_ack_pending,
        max_deliver=-1,
        description="audit: stores every event once in ibkr_trading_activity_log",
    )


class AuditConsumer:
    """Runs the fetch, write and ack loops of one durable consumer, over the NATS connection `nc`."""

    def __init__(
        self,
        nc: Client,
        store: AuditStore,
        *,
        stream: str,
        durable: str,
        batch_max: int = 1000,
        max_latency_s: float = 0.05,
        ack_wait_s: float = 60.0,
        max_ack_pending: int = 5000,
        retry_max_s: float = 5.0,
        create: bool = True,
    ) -> None:
        self.js: JetStreamContext = nc.jetstream()
        #: Create/update the consumer at start; False: it was provisioned (the user may not create it).
        self.create = create
        self.store = store
        self.stream = stream
        self.durable = durable
        self.batch_max = batch_max
        self.max_latency_s = max_latency_s
        #: Pause after a fetch that did not fill a batch: a fifth of the latency bound (10 ms by default).
        self.fill_pause_s = max_latency_s / 5
        self.ack_wait_s = ack_wait_s
        self.max_ack_pending = max(max_ack_pending, batch_max)
        self.retry_max_s = retry_max_s
        self.stats = Stats()
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=2)
        self._acks: asyncio.Queue[list[Msg]] = asyncio.Queue()  # committed, to acknowledge
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._writing = False
        self._subscription: JetStreamContext.PullSubscription | None = None

    def consumer_config(self) -> ConsumerConfig:
        """The durable consumer: every message of the stream, explicit ack, never given up on."""
        return durable_config(self.durable, self.ack_wait_s, self.max_ack_pending)

    async def start(self) -> None:
        """Create (or update) the durable consumer, or only find it when provisioned beforehand; bind to it
        and start the loops."""
        if not self.create:
            try:
                await self.js.consumer_info(self.stream, self.durable)
            except NotFoundError:
                raise RuntimeError(f"consumer {self.durable} on {self.stream} does not exist and "
                                   "IBKR_PROVISION_STREAMS=false: run python -m ibkr_audit.provision first") from None
        else:
            try:
                await self.js.add_consumer(self.stream, self.consumer_config())
            except Exception as exc:
                log.warning("consumer %s on %s not created/updated (%s); binding to it", self.durable, self.stream,
                            exc)
                await self.js.consumer_info(self.stream, self.durable)
        self._subscription = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._tasks = [
            asyncio.create_task(self._fetch_loop(), name="audit-fetch"),
            asyncio.create_task(self._write_loop(), name="audit-write"),
            asyncio.create_task(self._ack_loop(), name="audit-ack"),
        ]
        log.info("consuming %s as %s (batch %d, %.0f ms)", self.stream, self.durable, self.batch_max,
                 self.max_latency_s * 1000)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop fetching, let the writer finish what it holds (bounded), then cancel."""
        self._stopping = True
        if self._tasks:
            fetcher, writer, acker = self._tasks
            await stop_task(fetcher)
            try:
                await asyncio.wait_for(self._drain(), timeout_s)
            except TimeoutError:
                log.warning("stopping with unstored messages; they will be redelivered")
            await stop_task(writer)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acks.join(), timeout_s)
            await stop_task(acker)
        if self._subscription is not None:
            with contextlib.suppress(Exception):  # the connection may be closed already
                await self._subscription.unsubscribe()

    async def _drain(self) -> None:
        while not self._queue.empty() or self._writing:
            await asyncio.sleep(0.02)

    async def _fetch_loop(self) -> None:
        assert self._subscription is not None
        delay = 0.1
        while not self._stopping:
            try:
                # What is there at once, else what arrives within the latency bound (then the pull expires).
                msgs = await self._subscription.fetch(self.batch_max, timeout=self.max_latency_s)
            except TimeoutError:  # nats-py's TimeoutError and FetchTimeoutError: nothing arrived
                delay = 0.1
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Disconnected, server restarting, consumer deleted (an API error): wait and pull again.
                log.warning("fetch failed (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            delay = 0.1
            if msgs:
                self.stats.received += len(msgs)
                batch = Batch()
                for start in range(0, len(msgs), PARSE_SLICE):
                    batch.extend(parse_batch(msgs[start : start + PARSE_SLICE]))
                    await asyncio.sleep(0)  # let the writer go on as soon as its commit is back
                await self._queue.put(batch)
            if len(msgs) < self.batch_max:
                # A flow, not a backlog: a fetch returns what is there at once, a few messages. Let the
                # next ones gather on the server, so that a fetch, its parse and the ack of what it brought
                # each cover many messages (the cost of a fetch is per call and per message).
                await asyncio.sleep(self.fill_pause_s)

    async def _write_loop(self) -> None:
        while True:
            batch = await self._queue.get()
            self._writing = True
            try:
                while len(batch.msgs) < self.batch_max and not self._queue.empty():
                    batch.extend(self._queue.get_nowait())
                await self._store(batch)
                # Committed. The acks go out while the next batch is written: off the writer's path.
                self._acks.put_nowait(batch.msgs)
            finally:
                self._writing = False

    async def _ack_loop(self) -> None:
        while True:
            msgs = await self._acks.get()
            try:
                await self._ack(msgs)
            finally:
                self._acks.task_done()

    async def _store(self, batch: Batch) -> None:
        delay = 0.1
        last_progress = time.monotonic()
        while True:
            try:
                outcome = await self.store.write_batch(batch.events, batch.dead)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.db_retries += 1
                log.warning("storing %d messages failed (%s: %s); retrying in %.1f s",
                            len(batch.msgs), type(exc).__name__, str(exc).splitlines()[0][:200], delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                if time.monotonic() - last_progress > self.ack_wait_s / 3:
                    await self._in_progress(batch.msgs)
                    last_progress = time.monotonic()
                continue
            self.stats.batches += 1
            self.stats.stored += outcome.stored
            self.stats.duplicates += outcome.duplicates
            self.stats.dead_letters += outcome.dead_letters
            self.stats.secrets_redacted += batch.redacted
            if outcome.dead_letters:
                log.warning("%d messages were not valid envelopes: stored as dead letters", outcome.dead_letters)
            return

    async def _in_progress(self, msgs: list[Msg]) -> None:
        """Restart the ack wait of messages held while the database is away (`+WPI`, any number of times)."""
        with contextlib.suppress(Exception):
            for msg in msgs:
                await msg.in_progress()

    async def _ack(self, msgs: list[Msg]) -> None:
        # Committed: acknowledge. A lost ack only means a redelivery, which the event id absorbs.
        try:
            for msg in msgs:
                await msg.ack()
        except Exception as exc:
            log.debug("ack failed (%s); the messages will be redelivered and skipped", exc)
