"""Resolving uncertain sends by client_order_id (cOID) at the gateway, in the background.

A ledger row is `unknown` when a send went out and no answer came back (the bridge died, the call
timed out, the answer was lost), and `pending`/`answering` when compliance stopped while sending.
The resolver runs for as long as compliance runs: while such rows exist it reads the gateway's live
orders and today's trades (one read each per round, for every open row at once) and:

- an order with the row's cOID found in either is `submitted` (with IBKR's order id);
- an order is concluded `not_sent` only from evidence that holds against IBKR's quirks: absence in
  CLEAN_READS rounds, each of them a complete live-orders read (not the empty answer of a session's
  first call, REFERENCE.md section 4) and a trades read without error, the first begun after the send
  could no longer be in flight (`in_flight_s` after it started: the bridge's own order budget is
  shorter), the last at least `spacing_s` after the first. The live orders of a brokerage session
  list every order of that session whatever became of it, and trades list today's fills.

Never is anything sent again here. A row concluded `not_sent` is sent again only when the client
retries it, with the same cOID: IBKR refuses a cOID it has seen in the last 24 hours (REFERENCE.md 7.4),
so an order that did arrive after all is revealed by that refusal (`submitted`), never placed twice.
Each resolution is recorded on the ledger row (`result.resolution`) with an `orders.resolved` event,
in one transaction, and so reaches the audit log.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.clock import Clock
from ibkr_common.messages.bridge import LiveOrders, LiveOrdersRequest, Trades, TradesRequest
from ibkr_compliance.ledger import Ledger, LedgerEntry
from ibkr_compliance.placement import Placement

log = logging.getLogger("ibkr_compliance.resolver")
#: Clean rounds without the order that prove it never arrived.
CLEAN_READS = 2
#: Rows older than this are no longer looked at (IBKR's trades go back 7 days at most).
HORIZON = timedelta(days=7)


def send_started(entry: LedgerEntry) -> datetime:
    """When the row's last send (the order, or an answer to IBKR's question) began."""
    started = entry.created_at
    sent = entry.result.get("sent_at")
    if isinstance(sent, str):
        started = max(started, datetime.fromisoformat(sent))
    for answer in entry.result.get("answers") or ():
        at = answer.get("answered_at") if isinstance(answer, dict) else None
        if isinstance(at, str):
            started = max(started, datetime.fromisoformat(at))
    return started


class Resolver:
    """The background loop that gives every uncertain send a definite outcome."""

    def __init__(self, ledger: Ledger, bridge: BridgeClient, placement: Placement, clock: Clock, *,
                 in_flight_s: float, spacing_s: float = 6.0, interval_s: float = 2.0, idle_s: float = 10.0,
                 timeout_s: float = 20.0) -> None:
        self.ledger = ledger
        self.bridge = bridge
        self.placement = placement
        self.clock = clock
        self.in_flight_s = in_flight_s
        self.spacing_s = spacing_s
        self.interval_s = interval_s
        self.idle_s = idle_s
        self.timeout_s = timeout_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A row may need resolving now (a send went uncertain, a client asks about one)."""
        self._wake.set()

    async def run(self) -> None:
        """Resolve until cancelled: a round every `interval_s` while rows are open, else on a wake."""
        while True:
            try:
                open_rows = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("resolving uncertain sends failed; trying again")
                open_rows = 1
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s if open_rows else self.idle_s)
            except TimeoutError:
                pass

    async def round(self) -> int:
        """One round over the open rows; returns how many are still open."""
        now = self.clock.now()
        rows = [e for e in await self.ledger.unresolved(now, HORIZON) if self._due(e, now)]
        if not rows:
            return len(await self.ledger.unresolved(now, HORIZON))
        started = self.clock.now()
        try:
            live, trades = await asyncio.gather(
                self.bridge.call("orders.live", LiveOrdersRequest(max_age_s=0, priority="order"), LiveOrders,
                                 timeout_s=self.timeout_s),
                self.bridge.call("trades.list", TradesRequest(days=1, priority="order"), Trades,
                                 timeout_s=self.timeout_s),
            )
        except BridgeError as exc:
            log.info("cannot resolve %d uncertain sends yet: %s", len(rows), exc)
            return len(rows)
        read = {"started_at": started.isoformat(), "live_orders": len(live.orders), "complete": live.complete,
                "trades": len(trades.trades)}
        left = 0
        for entry in rows:
            if not await self._settle(entry, live, trades, started, read):
                left += 1
        return left

    def _due(self, entry: LedgerEntry, now: datetime) -> bool:
        """`unknown` rows at once (an order found is found); rows in flight once no send can still be on its way."""
        return entry.status == "unknown" or now - send_started(entry) >= timedelta(seconds=self.in_flight_s)

    async def _settle(self, entry: LedgerEntry, live: LiveOrders, trades: Trades, started: datetime,
                      read: dict[str, Any]) -> bool:
        """Resolve one row from one round's reads; True when it got its outcome."""
        cid, account = entry.client_order_id, entry.account_id
        for order in live.orders:
            if order.client_order_id == cid and order.account_id in (None, account):
                evidence = {**read, "source": "live_orders", "status": order.status}
                return await self.placement.resolved(entry, "submitted", order_id=order.order_id,
                                                     order_status=order.status, evidence=evidence)
        for trade in trades.trades:
            if trade.client_order_id == cid and trade.account_id in (None, account):
                evidence = {**read, "source": "trades"}
                return await self.placement.resolved(entry, "submitted", order_id=trade.order_id,
                                                     order_status="filled", evidence=evidence)
        after_fault = started - send_started(entry) >= timedelta(seconds=self.in_flight_s)
        if not (live.complete and after_fault):
            return False  # absence here proves nothing
        checks = [c for c in entry.result.get("absent") or () if isinstance(c, dict)]
        checks.append(read)
        first = datetime.fromisoformat(checks[0]["started_at"])
        if len(checks) >= CLEAN_READS and (started - first).total_seconds() >= self.spacing_s:
            log.warning("order %s never reached the gateway (%d clean reads); not_sent", cid, len(checks))
            return await self.placement.resolved(entry, "not_sent", evidence={"absent": checks})
        result = {**entry.result, "absent": checks}
        await self.ledger.record(cid, status="unknown", result=result, now=self.clock.now(), expected=entry.status)
        return False
