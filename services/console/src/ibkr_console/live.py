"""Live updates: one JetStream consumer per connection (`IbkrClient.events()`), fanned out to every open
page as server-sent events. Nothing polls: a page learns of a change when the event arrives, then asks
the console for the parts of itself that the event's area touches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ibkr_client.errors import IbkrError
from ibkr_console.stack import StackAccess
from ibkr_contract.envelope import EventEnvelope

log = logging.getLogger("ibkr_console.live")
#: What a page may show; `gateway.call` and tickles are too many and say nothing to an operator.
LIVE_TYPES = ["session", "positions", "orders", "compliance", "trading", "sync", "account", "connection"]
QUIET = frozenset({"session.tickled"})
HEARTBEAT_S = 15.0
QUEUE_MAX = 500
RETRY_S = 2.0
STOP = "__stop__"


def summary(event: EventEnvelope) -> str:
    """One line an operator can read (no payload is rendered whole: nothing secret can slip through)."""
    p: dict[str, Any] = event.payload or {}
    kind = event.type
    if kind.startswith("orders.") and isinstance(p.get("order"), dict):
        o = p["order"]
        text = " ".join(str(o.get(k)) for k in ("side", "quantity", "symbol") if o.get(k) is not None)
        status = o.get("status") or p.get("order_status") or ""
        return f"{text} {status}".strip() + (f" (order {o['order_id']})" if o.get("order_id") else "")
    if kind.startswith("positions.") and isinstance(p.get("position"), dict):
        pos = p["position"]
        return f"{pos.get('symbol') or pos.get('conid')} quantity {pos.get('quantity')}"
    if kind.startswith("compliance."):
        codes = ", ".join(str(r.get("code")) for r in p.get("reasons") or [] if isinstance(r, dict))
        return f"{p.get('action', '')} {p.get('symbol') or ''} {p.get('decision', '')} {codes}".strip()
    if kind.startswith("trading."):
        return f"{p.get('reason', '')} (by {p.get('changed_by') or 'unknown'})"
    if kind.startswith("session."):
        return str(p.get("reason") or p.get("status") or "")
    if kind.startswith("account.") and isinstance(p.get("account"), dict):
        return f"net liquidation {p['account'].get('net_liquidation')}"
    if kind.startswith("connection.") and isinstance(p.get("connection"), dict):
        return f"{p['connection'].get('connection')} {p['connection'].get('state')}"
    return str(p.get("message") or "")


def to_message(event: EventEnvelope) -> dict[str, Any]:
    return {"type": event.type, "area": event.type.split(".", 1)[0], "account_id": event.account_id,
            "conn": event.conn, "occurred_at": event.occurred_at.isoformat(), "summary": summary(event)}


@dataclass
class Feed:
    """The consumer of one connection and the queues of the pages that listen to it."""

    conn: str
    listeners: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    delivered: int = 0


class LiveHub:
    """Feeds by connection; `listen(conn)` is an async iterator of messages for one page."""

    def __init__(self, stack: StackAccess) -> None:
        self.stack = stack
        self.feeds: dict[str, Feed] = {}
        self.closing = False

    def feed(self, conn: str) -> Feed:
        found = self.feeds.get(conn)
        if found is None:
            found = self.feeds[conn] = Feed(conn)
            found.task = asyncio.get_running_loop().create_task(self._run(found), name=f"console-feed-{conn}")
        return found

    async def _run(self, feed: Feed) -> None:
        while True:
            try:
                ib = await self.stack.client(feed.conn)
                async with ib.events(types=LIVE_TYPES, start="new") as events:
                    feed.ready.set()
                    log.info("live feed of %s reading events", feed.conn)
                    async for event in events:
                        if event.type in QUIET:
                            continue
                        message = to_message(event)
                        feed.delivered += 1
                        for queue in list(feed.listeners):
                            with contextlib.suppress(asyncio.QueueFull):
                                queue.put_nowait(message)
            except asyncio.CancelledError:
                raise
            except (IbkrError, OSError, Exception) as exc:  # NATS away: read again once it is back
                feed.ready.clear()
                log.warning("live feed of %s stopped (%s: %s); again in %g s", feed.conn, type(exc).__name__,
                            exc, RETRY_S)
                await asyncio.sleep(RETRY_S)

    async def listen(self, conn: str) -> AsyncIterator[str]:
        """Server-sent event lines for one page: each event, and a comment every HEARTBEAT_S."""
        feed = self.feed(conn)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
        feed.listeners.add(queue)
        try:
            yield "retry: 2000\n: listening\n\n"
            while not self.closing:
                try:
                    message = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield ": heartbeat\n\n"
                    continue
                if message.get("type") == STOP:
                    return
                yield f"event: ibkr\ndata: {json.dumps(message)}\n\n"
        finally:
            feed.listeners.discard(queue)

    def end_streams(self) -> None:
        """The server is stopping: every open page's stream ends now (the browser reconnects elsewhere)."""
        self.closing = True
        for feed in self.feeds.values():
            for queue in list(feed.listeners):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait({"type": STOP})

    async def close(self) -> None:
        for feed in self.feeds.values():
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task
        self.feeds.clear()
