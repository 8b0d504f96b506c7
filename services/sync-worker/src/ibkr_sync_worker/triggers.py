"""When to sync: at start, every interval, on request, after a fill; paused while unauthenticated.

Syncs never overlap. Requests that arrive during a sync wait for the next one, and all requests
waiting together are served by that one round (coalesced); `request()` returns its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from faststream.nats import NatsBroker, NatsRouter

from ibkr_common.bridge_client import BridgeError
from ibkr_common.connections import ConnectionMiddleware, connection_of_subject, current_message
from ibkr_common.subjects import Subjects
from ibkr_common.tasks import stop_tasks
from ibkr_sync_worker.syncer import SyncAborted, Syncer, SyncResult

log = logging.getLogger("ibkr_sync_worker.triggers")
PAUSE_ON = frozenset({"unauthenticated", "expired", "logged_out", "competing"})
RETRY_S = 5.0


class SyncScheduler:
    """Serialises and coalesces sync requests; owns the interval timer."""

    def __init__(self, syncer: Syncer, *, interval_s: float, follow_up_s: float) -> None:
        self.syncer = syncer
        self.interval_s = interval_s
        self.follow_up_s = follow_up_s
        self._pending: list[tuple[str | None, asyncio.Future[SyncResult]]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._soon: dict[str | None, asyncio.TimerHandle] = {}
        self.rounds = 0
        self.last_failed = False
        self._stopping = False
        self.running = False

    @property
    def paused(self) -> bool:
        return self.syncer.paused

    def start(self) -> None:
        """Run the worker and the interval timer; a full sync starts right away."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker()), loop.create_task(self._interval())]
        self.submit(None)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for timer in self._timers:
            timer.cancel()
        await stop_tasks(self._tasks)
        for _, future in self._pending:
            if not future.done():
                future.set_exception(SyncAborted("UNAVAILABLE", "the sync-worker is stopping"))

    def submit(self, account_id: str | None) -> asyncio.Future[SyncResult]:
        """Ask for a sync of one account (None: all); the future resolves when it is done."""
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        self._pending.append((account_id, future))
        self._wake.set()
        return future

    async def request(self, account_id: str | None) -> SyncResult:
        """Sync and wait for the result (raises SyncAborted when the round could not run)."""
        return await asyncio.shield(self.submit(account_id))

    def soon(self, account_id: str | None, delay_s: float | None = None) -> None:
        """Ask for a sync after a short delay (orders just submitted, fills just seen).

        One follow-up per account at a time: a burst of orders gets one sync after the delay (which sees
        them all), not one each; a follow-up of every account covers the single ones.
        """
        if any(a is None for a, _ in self._pending) or None in self._soon or account_id in self._soon:
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._timers.discard(handle)  # type: ignore[arg-type]
            self._soon.pop(account_id, None)
            self.submit(account_id)

        handle = loop.call_later(self.follow_up_s if delay_s is None else delay_s, fire)
        self._timers.add(handle)
        self._soon[account_id] = handle

    async def _worker(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            batch, self._pending = self._pending, []
            if not batch:
                continue
            wanted = None if any(a is None for a, _ in batch) else {a for a, _ in batch if a}
            self.running = True
            try:
                result = await self.syncer.sync(wanted)
            except SyncAborted as exc:
                self.last_failed = True
                log.warning("sync not run: %s", exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except Exception as exc:
                self.last_failed = True
                log.exception("sync failed")
                aborted = SyncAborted("INTERNAL", f"sync failed: {type(exc).__name__}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(aborted)
                continue
            finally:
                self.running = False
            self.rounds += 1
            self.last_failed = False
            for _, future in batch:
                if not future.done():
                    future.set_result(result)
            if result.fills_seen:
                self.soon(None)

    async def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until no sync runs, is queued or is scheduled (tests, benchmarks); True when idle."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.running or self._pending or self._timers:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _interval(self) -> None:
        while not self._stopping:
            delay = min(self.interval_s, RETRY_S) if self.last_failed and not self.paused else self.interval_s
            await asyncio.sleep(delay)
            if self.paused:
                await self.probe_session()
            elif not any(a is None for a, _ in self._pending):
                self.submit(None)

    async def probe_session(self) -> None:
        """While paused: ask the bridge whether the session is back; resume with a full sync if so."""
        try:
            status = await self.syncer.bridge.session_status()
        except BridgeError as exc:
            log.debug("session probe failed: %s", exc)
            return
        if status.authenticated:
            self.resume("session probe")

    def pause(self, why: str) -> None:
        if not self.syncer.paused:
            log.info("syncs paused: %s", why)
        self.syncer.paused = True

    def resume(self, why: str) -> None:
        """Authenticated again: a full sync now."""
        if self.syncer.paused:
            log.info("syncs resumed: %s", why)
        self.syncer.paused = False
        self.submit(None)

    # ---- events of other services ---------------------------------------------------------------

    async def on_session_event(self, subject: str, data: bytes) -> None:
        kind = subject.rsplit(".", 1)[-1]
        if kind == "authenticated":
            self.resume("session.authenticated")
        elif kind in PAUSE_ON:
            self.pause(f"session.{kind}")

    async def on_order_event(self, subject: str, data: bytes, own_source: str) -> None:
        """An order was submitted (by compliance): it may fill at once, so look again shortly."""
        if not subject.endswith(".submitted"):
            return
        try:
            envelope = json.loads(data)
        except ValueError:
            return
        if isinstance(envelope, dict) and envelope.get("source") != own_source and not self.paused:
            self.soon(envelope.get("account_id"))


def subscribe_events(broker: NatsBroker, scheduler_of: Callable[[str], SyncScheduler | None], source: str) -> None:
    """Core-NATS subscribers to the session and order events of every connection (`ibkr.*.events.session.>`,
    `ibkr.*.events.orders.>`), each event handed to its connection's scheduler (`scheduler_of(conn)`; None: a
    connection not served, ignored).

    Core NATS rather than a JetStream consumer, and no queue group: every replica hears every event and
    drives its own schedule of that connection, as each replica runs one; a trigger is a hint (the interval
    and the session probe catch up on a missed one), so nothing needs the stream's delivery guarantees. Two
    wildcard subscriptions cover every connection, present and future: nothing is created or deleted when a
    connection comes or goes, and replicas share no consumer state."""

    router = NatsRouter(middlewares=[ConnectionMiddleware])  # the message without a worker-thread hop

    async def on_session() -> None:
        message = current_message()
        with contextlib.suppress(Exception):
            subject = message.raw_message.subject
            scheduler = scheduler_of(connection_of_subject(subject))
            if scheduler is not None:
                await scheduler.on_session_event(subject, message.body)

    async def on_order() -> None:
        message = current_message()
        with contextlib.suppress(Exception):
            subject = message.raw_message.subject
            scheduler = scheduler_of(connection_of_subject(subject))
            if scheduler is not None:
                await scheduler.on_order_event(subject, message.body, source)

    router.subscriber(Subjects.every_connection().events_of("session"), title="sync-on-session-events", no_reply=True,
                      description="Pauses a connection's syncs while its session is down; a full sync when it "
                                  "is back.")(on_session)
    router.subscriber(Subjects.every_connection().events_of("orders"), title="sync-on-order-events", no_reply=True,
                      description="Looks at an account again shortly after compliance submitted an order on its "
                                  "connection.")(on_order)
    broker.include_router(router)


def _consume(future: asyncio.Future[SyncResult]) -> None:
    """Mark a fire-and-forget future's exception as retrieved."""
    if not future.cancelled():
        future.exception()
