"""gateway.call events: one per Client Portal call, published off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from ibkr_common.events import EventPublisher
from ibkr_gateway_bridge.client.transport import CallRecord

log = logging.getLogger("ibkr.gateway-bridge.events")


class CallEvents:
    """A bounded queue of call records and one task that emits them as `gateway.call` events.

    Recording never blocks a request; when the queue is full the oldest record is dropped and counted.
    The payload is the path *template*, so no account number ever appears in it.
    """

    def __init__(self, publisher: EventPublisher, max_pending: int = 10_000) -> None:
        self.publisher = publisher
        self._pending: deque[CallRecord] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.emitted = 0

    def record(self, record: CallRecord) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(record)
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                record = self._pending.popleft()
                try:
                    await self.publisher.emit("gateway.call", record.payload())
                    self.emitted += 1
                except Exception:
                    log.exception("gateway.call event not published")

    async def stop(self, timeout_s: float = 3.0) -> None:
        """Emit what is pending (bounded), then stop."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._pending and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.publisher.close()
