"""Transactional outbox: events written with the state they describe, relayed to JetStream after commit.

A crash between the commit and the publish loses nothing: the relay publishes what is still
pending, with the same `event_id` (`Nats-Msg-Id`), so the stream drops a second copy.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.db.models import OutboxEvent
from ibkr_common.envelope import EventEnvelope
from ibkr_common.events import EventPublisher
from ibkr_common.tasks import stop_task, wait_event

log = logging.getLogger("ibkr_common.outbox")


def outbox_row(publisher: EventPublisher, envelope: EventEnvelope) -> dict[str, object]:
    """The outbox columns of an event."""
    return {
        "source": publisher.source,
        "subject": publisher.subjects.event(envelope.type, envelope.account_id),
        "event_id": str(envelope.event_id),
        "envelope": envelope.model_dump_json(),
        "created_at": envelope.occurred_at,
        "published_at": None,
    }


def stage_event(session: AsyncSession, publisher: EventPublisher, envelope: EventEnvelope) -> None:
    """Add an event to the outbox inside the caller's transaction."""
    session.add(OutboxEvent(**outbox_row(publisher, envelope)))


class OutboxRelay:
    """Publishes pending outbox rows of one service, in order, marking each once acknowledged."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        *,
        clock: Clock | None = None,
        batch: int = 200,
        idle_s: float = 0.5,
        linger_s: float = 0.0,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.clock = clock or SystemClock()
        self.batch = batch
        self.idle_s = idle_s
        self.linger_s = linger_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Relay now instead of at the next poll (call after committing staged events)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish up to one batch of pending events; return how many were published.

        The batch's publishes go out together (one write, acks awaited side by side), in id order; the
        rows up to the first one not acknowledged are marked, the rest are sent again next round (the
        stream drops a repeat by its Nats-Msg-Id)."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.subject, OutboxEvent.event_id, OutboxEvent.envelope)
                    .where(OutboxEvent.source == self.publisher.source, OutboxEvent.published_at.is_(None))
                    .order_by(OutboxEvent.id)
                    .limit(self.batch)
                )
            ).all()
        outcomes = await asyncio.gather(
            *(self.publisher.publish_stored(subject, event_id, raw.encode()) for _, subject, event_id, raw in rows),
            return_exceptions=True,
        )
        done: list[int] = []
        for (row_id, *_), outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("outbox relay paused: %s", type(outcome).__name__)
                break
            done.append(row_id)
        if done:
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(OutboxEvent).where(OutboxEvent.id.in_(done)).values(published_at=self.clock.now())
                )
        return len(done)

    async def backlog(self) -> tuple[int, datetime | None]:
        """Rows of this service not yet published, and when the oldest of them was written (metrics)."""
        async with self.sessions() as session:
            count, oldest = (await session.execute(
                select(func.count(), func.min(OutboxEvent.created_at))
                .where(OutboxEvent.source == self.publisher.source, OutboxEvent.published_at.is_(None))
            )).one()
        return int(count), oldest

    async def run(self) -> None:
        """Relay until cancelled."""
        while True:
            try:
                published = await self.relay_once()
            except Exception:
                log.exception("outbox relay failed; retrying")
                published = 0
            if published >= self.batch:
                continue
            self._wake.clear()
            if await wait_event(self._wake, self.idle_s) and self.linger_s:
                await asyncio.sleep(self.linger_s)  # let the events of the next moments join this round

    def start(self) -> None:
        """Run in the background."""
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Publish what is pending (best effort) and stop."""
        await stop_task(self._task)
        try:
            await self.relay_once()
        except Exception:
            log.warning("outbox not fully relayed at stop; it will be on the next start")
