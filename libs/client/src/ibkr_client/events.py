"""`ib.events(...)`: events of the stack read from its JetStream stream, as an async iterator.

An ephemeral consumer reads from where `start` says; the server removes it once nobody has pulled from it
for `EPHEMERAL_IDLE_S` (the client asks nothing more of the server than the public commands, creating a
consumer, pulling and acknowledging: what deploy/nats.conf grants the `client` user). A
durable consumer (`durable="name"`) is kept by the server: each event is acknowledged once the next
one is asked for, or when the `async with` block ends without an error, so a program that stops and
starts again goes on after the last event it finished with; nothing is missed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from ibkr_client.errors import StackUnavailable, ValidationFailed
from ibkr_contract.envelope import EventEnvelope
from ibkr_contract.subjects import EVENT_AREAS, EVENT_TYPES, EVENTS_STREAM, Subjects

if TYPE_CHECKING:
    from ibkr_client.client import IbkrClient

log = logging.getLogger("ibkr_client.events")
EPHEMERAL_IDLE_S = 30.0
FETCH_WAIT_S = 2.0
_POLICIES = {"new": DeliverPolicy.NEW, "all": DeliverPolicy.ALL, "last": DeliverPolicy.LAST}


def event_filters(subjects: Subjects, types: Sequence[str] | str | None, account: str | None) -> list[str]:
    """The consumer's subject filters for these types (types or areas) and account, without overlaps."""
    wanted = [types] if isinstance(types, str) else list(types or [])
    for selector in wanted:
        if selector not in EVENT_TYPES and selector not in EVENT_AREAS:
            raise ValidationFailed(f"types: unknown event type or area {selector!r}",
                                   details=[{"field": "types", "message": f"unknown event type or area {selector!r}"}])
    if not wanted:
        return [subjects.events_all]
    areas = {s for s in wanted if s in EVENT_AREAS}
    kept = [s for s in dict.fromkeys(wanted) if s in areas or s.split(".", 1)[0] not in areas]
    try:
        return list(dict.fromkeys(subjects.event_filter(s, account) for s in kept))
    except ValueError as exc:
        raise ValidationFailed(f"account: {exc}", details=[{"field": "account", "message": str(exc)}]) from None


class EventStream:
    """An async iterator of `EventEnvelope`s; use it with `async with` so its consumer is closed."""

    def __init__(self, client: IbkrClient, *, types: Sequence[str] | str | None, account: str | None,
                 durable: str | None, start: Literal["new", "all", "last"] | datetime, stream: str | None,
                 idle_timeout: float | None, batch: int = 100) -> None:
        if isinstance(start, str) and start not in _POLICIES:
            raise ValidationFailed(f"start: must be new, all, last or a time, not {start!r}",
                                   details=[{"field": "start", "message": "must be new, all, last or a time"}])
        self.client = client
        self.types = types
        self.account = account
        self.durable = durable
        self.start = start
        self.stream = stream
        self.idle_timeout = idle_timeout
        self.batch = batch
        self.last_sequence: int | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._consumer: str | None = None
        self._buffer: deque[Msg] = deque()
        self._unacked: Msg | None = None

    async def open(self) -> EventStream:
        """Create (or, when durable and known, bind to) the consumer."""
        if self._sub is not None:
            return self
        if self.client.subjects is None:
            await self.client.connect()
        assert self.client.subjects is not None
        filters = event_filters(self.client.subjects, self.types, self.account)
        js = self.client.nats.jetstream()
        stream = self.stream or EVENTS_STREAM
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT if self.durable else AckPolicy.NONE,
            inactive_threshold=None if self.durable else EPHEMERAL_IDLE_S,
            description="ibkr-client " + (self.durable or "ephemeral") + f" ({', '.join(filters)})",
        )
        if len(filters) > 1:
            config.filter_subjects = filters
        else:
            config.filter_subject = filters[0]
        if isinstance(self.start, datetime):
            config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, self.start
        else:
            config.deliver_policy = _POLICIES[self.start]
        try:
            self._sub = await js.pull_subscribe(filters[0], durable=self.durable, stream=stream, config=config)
        except nats.js.errors.NotFoundError:
            raise StackUnavailable(f"no JetStream stream {stream} (has the stack started?)") from None
        except nats.js.errors.BadRequestError as exc:
            raise ValidationFailed(f"the stream refused the consumer: {exc.description}") from None
        except TimeoutError:  # nats-py raises its own or asyncio's
            raise StackUnavailable(f"JetStream did not answer for stream {stream} (is JetStream enabled, and may "
                                   "this user create consumers?)") from None
        self.stream = stream
        self._consumer = (await self._sub.consumer_info()).name
        return self

    async def close(self, *, ack_last: bool = True) -> None:
        """Stop reading; acknowledge the last event handed out (durable) unless `ack_last` is false. (An
        ephemeral consumer is removed by the server once idle.)"""
        sub, self._sub = self._sub, None
        if sub is None:
            return
        try:
            if ack_last:
                await self._ack()
            await sub.unsubscribe()
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            log.debug("closing the event consumer: %s", exc)

    async def __aenter__(self) -> EventStream:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close(ack_last=exc_type is None)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> EventEnvelope:
        if self._sub is None:
            await self.open()
        await self._ack()
        idle_since = time.monotonic()
        while True:
            while self._buffer:
                msg = self._buffer.popleft()
                envelope = self._read(msg)
                if envelope is None:
                    await self._ack_now(msg)
                    continue
                self._unacked = msg
                self.last_sequence = msg.metadata.sequence.stream
                return envelope
            wait = FETCH_WAIT_S
            if self.idle_timeout is not None:
                left = self.idle_timeout - (time.monotonic() - idle_since)
                if left <= 0:
                    raise StopAsyncIteration
                wait = max(0.05, min(wait, left))
            assert self._sub is not None
            try:
                self._buffer.extend(await self._sub.fetch(self.batch, timeout=wait))
            except TimeoutError:  # nats-py's own and asyncio's (fetch raises either when nothing came)
                continue
            except nats.errors.ConnectionClosedError:
                raise StackUnavailable("the connection to NATS closed while reading events") from None

    def _read(self, msg: Msg) -> EventEnvelope | None:
        try:
            envelope = EventEnvelope.model_validate_json(msg.data)
        except ValidationError as exc:
            log.warning("skipping a message on %s that is not an event envelope: %s", msg.subject,
                        exc.errors()[0]["msg"])
            return None
        if self.account and envelope.account_id != self.account:
            return None
        return envelope

    async def _ack(self) -> None:
        msg, self._unacked = self._unacked, None
        if msg is not None:
            await self._ack_now(msg)

    async def _ack_now(self, msg: Msg) -> None:
        if self.durable:
            await msg.ack()
