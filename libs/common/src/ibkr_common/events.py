"""Publishing events to JetStream with acknowledgement, deduplication and a bounded retry buffer."""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Literal, Protocol

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.envelope import EventEnvelope, new_event
from ibkr_common.subjects import Subjects

log = logging.getLogger("ibkr_common.events")


class JetStreamSender(Protocol):
    """What the publisher needs of a broker: publish with headers to a stream and await the ack."""

    async def publish(
        self, message: Any, subject: str, headers: dict[str, str] | None = None, *, stream: str | None = None,
        timeout: float | None = None,
    ) -> Any: ...


class EventPublisher:
    """Emits envelopes on `ibkr.<conn>.events.…`, acknowledged by the stream.

    A failed publish goes to a bounded buffer that is retried in the background; the same
    `event_id` is reused, so the stream's duplicate window drops any double delivery.
    """

    def __init__(
        self,
        sender: JetStreamSender,
        *,
        subjects: Subjects,
        stream: str,
        source: str,
        environment: Literal["paper", "live"],
        clock: Clock | None = None,
        max_buffer: int = 10_000,
        ack_timeout_s: float = 2.0,
    ) -> None:
        self.sender = sender
        self.subjects = subjects
        self.stream = stream
        self.source = source
        self.environment = environment
        self.clock = clock or SystemClock()
        self.ack_timeout_s = ack_timeout_s
        self._buffer: collections.deque[tuple[str, EventEnvelope]] = collections.deque(maxlen=max_buffer)
        self._retry_task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.published = 0

    @property
    def pending(self) -> int:
        """Events waiting in the retry buffer."""
        return len(self._buffer)

    def build(
        self,
        event_type: str,
        payload: dict[str, Any] | None = None,
        *,
        account_id: str | None = None,
        user_id: str | None = None,
        correlation_id: str | None = None,
    ) -> EventEnvelope:
        """An envelope of this service, stamped with the clock's time."""
        return new_event(
            event_type,
            conn=self.subjects.conn,
            environment=self.environment,
            source=self.source,
            occurred_at=self.clock.now(),
            payload=payload,
            account_id=account_id,
            user_id=user_id,
            correlation_id=correlation_id,
        )

    async def emit(
        self,
        event_type: str,
        payload: dict[str, Any] | None = None,
        *,
        account_id: str | None = None,
        user_id: str | None = None,
        correlation_id: str | None = None,
    ) -> EventEnvelope:
        """Build and publish an event; on failure it is buffered and retried, never raised."""
        envelope = self.build(
            event_type, payload, account_id=account_id, user_id=user_id, correlation_id=correlation_id
        )
        await self.publish(envelope)
        return envelope

    async def publish(self, envelope: EventEnvelope) -> bool:
        """Publish an envelope; True when acknowledged now, False when buffered for retry."""
        subject = self.subjects.event(envelope.type, envelope.account_id)
        if self._buffer:
            self._enqueue(subject, envelope)
            return False
        try:
            await self._send(subject, envelope)
            return True
        except Exception as exc:
            log.warning("event %s not acknowledged (%s); buffered for retry", envelope.type, type(exc).__name__)
            self._enqueue(subject, envelope)
            return False

    async def publish_raw(self, subject: str, envelope: EventEnvelope) -> None:
        """Publish to an explicit subject and raise when not acknowledged (outbox relays)."""
        await self._send(subject, envelope)

    async def publish_stored(self, subject: str, event_id: str, data: bytes) -> None:
        """Publish an envelope already serialised by `EventEnvelope.to_bytes` (an outbox row); raise when
        not acknowledged."""
        await self.sender.publish(
            data, subject, headers={"Nats-Msg-Id": event_id, "content-type": "application/json"},
            stream=self.stream, timeout=self.ack_timeout_s,
        )
        self.published += 1

    async def _send(self, subject: str, envelope: EventEnvelope) -> None:
        await self.publish_stored(subject, str(envelope.event_id), envelope.to_bytes())

    def _enqueue(self, subject: str, envelope: EventEnvelope) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
            log.error("event retry buffer full: dropping the oldest event (%d dropped so far)", self.dropped)
        self._buffer.append((subject, envelope))
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.get_running_loop().create_task(self._retry_loop())

    async def _retry_loop(self) -> None:
        delay = 0.2
        while self._buffer:
            subject, envelope = self._buffer[0]
            try:
                await self._send(subject, envelope)
            except Exception:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._buffer.popleft()
            delay = 0.2

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until the retry buffer is empty (or the timeout passes); True when empty."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._buffer and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return not self._buffer

    async def close(self) -> None:
        """Try to flush, then stop retrying."""
        await self.flush()
        if self._retry_task is not None:
            self._retry_task.cancel()
