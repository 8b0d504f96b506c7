"""The durable pull consumer: fetch, validate, store a batch, and acknowledge only after the commit.

Three tasks: the fetcher pulls (`puller.BatchPuller`) and parses the next batch while the writer
commits the previous one, and the acker acknowledges what was committed while the writer goes on. A
message is acknowledged only once the transaction holding its row (or its dead letter, or the row of an
earlier copy of it) committed. While the database is down the writer keeps the batch, retries with
backoff and tells JetStream the messages are in progress, so nothing is acknowledged, lost or
redelivered meanwhile; the bounded queue and `max_ack_pending` stop the fetcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from ibkr_audit.chain import ChainRow
from ibkr_audit.puller import BatchPuller, StreamMsg
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

    msgs: list[StreamMsg] = field(default_factory=list)
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


def stream_sequence(reply: str | None) -> int | None:
    """The stream sequence in a JetStream ack subject (`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>...`,
    or the form with domain and account hash, as nats-py reads it), without building nats-py's metadata."""
    if not reply:
        return None
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    text = tokens[5] if len(tokens) == 9 else tokens[7] if len(tokens) >= 11 else ""
    return int(text) if text.isdigit() else None


def parse_batch(msgs: list[StreamMsg]) -> Batch:
    """Parse fetched messages into a batch."""
    batch = Batch(msgs=msgs)
    for msg in msgs:
        item, masked = parse_message(msg.subject, msg.data, stream_sequence(msg.reply))
        if isinstance(item, DeadLetterItem):
            batch.dead.append(item)
        else:
            batch.events.append(item)
            if masked:
                batch.redacted += 1
    return batch


class AuditConsumer:
    """Runs the fetch and write loops of one durable consumer."""

    def __init__(
        self,
        js: JetStreamContext,
        store: AuditStore,
        *,
        servers: str,
        stream: str,
        durable: str,
        batch_max: int = 1000,
        max_latency_s: float = 0.05,
        ack_wait_s: float = 60.0,
        max_ack_pending: int = 5000,
        retry_max_s: float = 5.0,
    ) -> None:
        self.js = js
        self.store = store
        self.servers = servers
        self.stream = stream
        self.durable = durable
        self.batch_max = batch_max
        self.max_latency_s = max_latency_s
        self.ack_wait_s = ack_wait_s
        self.max_ack_pending = max(max_ack_pending, batch_max)
        self.retry_max_s = retry_max_s
        self.stats = Stats()
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=2)
        self._acks: asyncio.Queue[list[StreamMsg]] = asyncio.Queue()  # committed, to acknowledge
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._writing = False
        self._puller: BatchPuller | None = None

    def consumer_config(self) -> ConsumerConfig:
        """The durable consumer: every message of the stream, explicit ack, never given up on."""
        return ConsumerConfig(
            durable_name=self.durable,
            name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_ack_pending=self.max_ack_pending,
            max_deliver=-1,
            description="audit: stores every event once in ibkr_trading_activity_log",
        )

    async def start(self) -> None:
        """Create (or update) the durable consumer, bind to it and start the loops."""
        try:
            await self.js.add_consumer(self.stream, self.consumer_config())
        except Exception as exc:
            log.warning("consumer %s on %s not created/updated (%s); binding to it", self.durable, self.stream, exc)
            await self.js.consumer_info(self.stream, self.durable)
        self._puller = BatchPuller(self.servers, self.stream, self.durable, name=f"ibkr-audit-pull-{self.durable}")
        await self._puller.start()
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
        if self._puller is not None:
            with contextlib.suppress(Exception):
                await self._puller.stop()

    async def _drain(self) -> None:
        while not self._queue.empty() or self._writing:
            await asyncio.sleep(0.02)

    async def _fetch_loop(self) -> None:
        assert self._puller is not None
        delay = 0.1
        while not self._stopping:
            try:
                msgs = await self._puller.fetch(self.batch_max, timeout=self.max_latency_s)
            except TimeoutError:
                delay = 0.1
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Disconnected, server restarting, consumer not reachable: wait and pull again.
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

    async def _in_progress(self, msgs: list[StreamMsg]) -> None:
        assert self._puller is not None
        with contextlib.suppress(Exception):
            await self._puller.acknowledge(msgs, b"+WPI")

    async def _ack(self, msgs: list[StreamMsg]) -> None:
        # Committed: acknowledge. A lost ack only means a redelivery, which the event id absorbs.
        assert self._puller is not None
        try:
            await self._puller.acknowledge(msgs)
        except Exception as exc:
            log.debug("ack failed (%s); the messages will be redelivered and skipped", exc)
