"""Batches from a durable JetStream pull consumer, pulled over a NATS connection of their own.

The same protocol as nats-py's `PullSubscription.fetch` (a `no_wait` pull for what is there, then a
pull that waits up to the timeout), without its per-message cost. nats-py turns each message into a
`Msg` with a parsed header dict, queues it and waits for each one with its own task and timer; here the
connection hands the messages of the pull subscription over as they are parsed (subject, reply, data,
raw header bytes), the pull's statuses are read off the header's first line, and acknowledgements are
plain publishes to the reply subjects. Messages of an earlier pull that arrive late are kept for the next
fetch; whatever is never acknowledged is redelivered by JetStream. Reconnecting is nats-py's (it
subscribes again under the same id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client

log = logging.getLogger("ibkr_audit.puller")

#: Statuses that end a pull: no messages (no_wait), request timeout (expires), conflict.
_ENDS_PULL = frozenset({"404", "408", "409"})
_HEARTBEAT = "100"
_STATUS_LINE = b"NATS/1.0 "


@dataclass(slots=True)
class StreamMsg:
    """One message of the stream, as delivered: its subject, its ack subject and its bytes."""

    subject: str
    reply: str
    data: bytes


class PullError(RuntimeError):
    """The server ended a pull with an unexpected status (the consumer was deleted, say)."""


class _PullClient(Client):
    """nats-py's client; the messages of one subscription skip the `Msg`/queue/task path."""

    def __init__(self) -> None:
        super().__init__()
        self.raw_sid = -1
        self.raw_sink: BatchPuller | None = None

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        sink = self.raw_sink
        if sid == self.raw_sid and sink is not None:
            sink.deliver(subject, reply, data, headers)
            return
        await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[arg-type]  # None: no headers


class BatchPuller:
    """Fetches batches of `stream`'s durable consumer `durable` from the NATS server at `servers`."""

    def __init__(self, servers: str, stream: str, durable: str, *, name: str) -> None:
        self.servers = servers
        self.name = name
        self.next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.nc = _PullClient()
        self._inbox = ""
        self._msgs: list[StreamMsg] = []
        self._pull = 0  # id of the pull being answered; statuses of older pulls are ignored
        self._pull_suffix = b".0"
        self._left = 0  # messages the current pull may still deliver
        self._answered = asyncio.Event()
        self._error: str | None = None

    async def start(self) -> None:
        """Connect (reconnecting forever) and subscribe to the pulls' reply subjects."""
        await self.nc.connect(servers=[self.servers], name=self.name, max_reconnect_attempts=-1,
                              reconnect_time_wait=1, connect_timeout=5)
        self._inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(f"{self._inbox}.*")
        self.nc.raw_sid = sub._id
        self.nc.raw_sink = self

    async def stop(self) -> None:
        """Close the connection; unacknowledged messages go back to JetStream after their ack wait."""
        self.nc.raw_sink = None
        if not self.nc.is_closed:
            await self.nc.close()

    def deliver(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        """A message of the pull subscription, straight from the protocol parser."""
        if headers is None or not headers.startswith(_STATUS_LINE):
            self._msgs.append(StreamMsg(subject.decode(), reply.decode(), data))
            self._left -= 1
            if self._left <= 0:
                self._answered.set()
            return
        status = headers[9:12].decode()
        if status == _HEARTBEAT or not subject.endswith(self._pull_suffix):
            return
        if status not in _ENDS_PULL:
            self._error = headers[9:].decode(errors="replace").split("\r\n")[0].strip()
        self._answered.set()

    async def _ask(self, batch: int, timeout: float | None) -> None:
        """Send one pull and wait until it is answered or `timeout` (plus a little) has passed."""
        self._pull += 1
        self._pull_suffix = f".{self._pull}".encode()
        self._left = batch
        self._answered.clear()
        request: dict[str, object] = {"batch": batch}
        if timeout is None:
            request["no_wait"] = True
        else:
            request["expires"] = max(int(timeout * 1e9) - 1_000_000, 1_000_000)
        await self.nc.publish(self.next_subject, json.dumps(request).encode(), reply=f"{self._inbox}.{self._pull}")
        wait = 5.0 if timeout is None else timeout + 0.5  # the server answers by itself; this is for a lost answer
        try:
            await asyncio.wait_for(self._answered.wait(), wait)
        except TimeoutError:
            log.debug("pull %d not answered within %.1f s", self._pull, wait)
        if self._error is not None:
            error, self._error = self._error, None
            raise PullError(f"pull ended with status {error}")

    async def fetch(self, batch: int, timeout: float) -> list[StreamMsg]:
        """Up to `batch` messages: what is there at once, else what arrives within `timeout`.

        Raises TimeoutError when nothing arrived, PullError on an unexpected status."""
        if self.nc.raw_sink is None:
            raise RuntimeError("BatchPuller.fetch before start()")
        started = time.monotonic()
        if len(self._msgs) < batch:
            await self._ask(batch - len(self._msgs), None)
        if not self._msgs:
            await self._ask(batch, max(timeout - (time.monotonic() - started), 0.001))
        if not self._msgs:
            raise TimeoutError
        taken, self._msgs = self._msgs[:batch], self._msgs[batch:]
        return taken

    async def acknowledge(self, msgs: list[StreamMsg], token: bytes = b"+ACK") -> None:
        """Acknowledge `msgs` (or, with `+WPI`, say they are in progress); a lost ack means a redelivery."""
        publish = self.nc.publish
        for msg in msgs:
            await publish(msg.reply, token)
