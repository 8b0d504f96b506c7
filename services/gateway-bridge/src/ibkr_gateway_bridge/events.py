"""gateway.call events: one per Client Portal call, published off the request path."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from ibkr_common.events import EventPublisher
from ibkr_common.tasks import stop_task
from ibkr_gateway_bridge.client.gateway import CallRecord

log = logging.getLogger(__name__)
BATCH_DELAY_S = 0.2
BATCH_MAX = 100


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
            await asyncio.sleep(BATCH_DELAY_S)  # gather a few, publish them together off the hot path
            self._wake.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), BATCH_MAX))]
                results = await asyncio.gather(
                    *(self.publisher.emit("gateway.call", r.payload()) for r in batch), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, BaseException):
                        log.error("gateway.call event not published: %s", type(result).__name__)
                    else:
                        self.emitted += 1

    async def stop(self, timeout_s: float = 3.0) -> None:
        """Emit what is pending (bounded), then stop."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._pending and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await stop_task(self._task)
        self._task = None
        await self.publisher.close()
