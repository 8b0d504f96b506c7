"""Orders: placement that is never sent twice, question passthrough, the live-orders cache, lookup by cOID."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from ibkr_common.messages import bridge as m
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge.budget import POST_SHARE, QUEUE_SHARE, Budget
from ibkr_gateway_bridge.client import ClientPortal, GatewayError

log = logging.getLogger(__name__)
DUPLICATE_COID = "local order id"
#: Queue wait allowed to a lookup: live orders and trades are 1 call / 5 s each.
LOOKUP_WAIT_S = 12.0
#: A lost order answer is looked up this many times (live orders, then trades), the first after a pause.
RESOLVE_ROUNDS = 2
RESOLVE_GRACE_S = 0.5
#: A lookup round is not started with less than this left of the budget.
MIN_LOOKUP_S = 0.2
#: Share of the budget that must be left when the order lock is got, else nothing is sent.
MIN_SEND_SHARE = 0.4
#: retry_after of an order refused because the order lock stayed busy for the whole budget.
BUSY_RETRY_AFTER_S = 5.0
#: An order is not started with less than this left before the caller's `answer_by`.
MIN_BUDGET_S = 1.0

T = TypeVar("T")


class OrderDesk:
    """The order operations of the bridge; only this class sends orders to IBKR."""

    def __init__(self, portal: ClientPortal, now: Callable[[], datetime], *, budget_s: float = 30.0) -> None:
        self.portal = portal
        self.now = now
        #: Overall time limit of each order operation (IBKR_BRIDGE_ORDER_BUDGET_S).
        self.budget_s = budget_s
        self._live: tuple[float, int, list[m.LiveOrder], datetime] | None = None
        self._live_lock = asyncio.Lock()
        # IBKR: one order conversation at a time ("don't submit another order until the previous one is
        # fully acknowledged"); handlers run concurrently, so placements, replies and modifications queue here.
        self._order_lock = asyncio.Lock()

    def _invalidate_live(self) -> None:
        self._live = None

    # ---- the budget ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _turn(self, budget: Budget, op: str) -> AsyncIterator[None]:
        """Hold the order lock. Sending needs MIN_SEND_SHARE of the budget still ahead (the POST and the
        resolution of a lost answer): a lock busy for longer answers RATE_LIMITED, nothing sent."""
        wait_s = max(0.0, budget.remaining() - budget.total_s * MIN_SEND_SHARE)
        try:
            async with asyncio.timeout(wait_s):
                await self._order_lock.acquire()
        except TimeoutError:
            raise ServiceError(
                ErrorCode.RATE_LIMITED,
                f"{op}: another order conversation held the gateway for {wait_s:.1f} s, too much of the "
                f"order budget ({budget.total_s:.1f} s); nothing was sent",
                {"retry_after": BUSY_RETRY_AFTER_S, "sent": False, "budget_s": budget.total_s},
            ) from None
        try:
            yield
        finally:
            self._order_lock.release()

    async def _send(self, budget: Budget, send: Callable[..., Awaitable[T]]) -> T:
        """One non-GET call cut to the budget; a budget that runs out mid-call may have delivered it."""
        settings = self.portal.gateway.settings
        limits = budget.call_limits(settings.request_timeout_s, settings.queue_timeout_s,
                                    read_share=POST_SHARE, queue_share=QUEUE_SHARE)
        try:
            async with asyncio.timeout_at(budget.deadline):
                return await send(**limits)
        except TimeoutError:
            raise GatewayError(
                ErrorCode.TIMEOUT, f"the order budget ({budget.total_s:.1f} s) ran out while the call was in flight",
                {"reason": "order_budget", "budget_s": budget.total_s}, maybe_delivered=True,
            ) from None

    def _read_limits(self, budget: Budget, queue_cap_s: float) -> dict[str, float]:
        return budget.call_limits(self.portal.gateway.settings.request_timeout_s, queue_cap_s)

    # ---- placement ---------------------------------------------------------------------------

    def _budget(self, answer_by: datetime | None, op: str) -> Budget:
        """The order budget, ending by the caller's `answer_by`; RATE_LIMITED (nothing sent) when too little
        is left of it (the request waited in the queue while the caller gave up)."""
        total = self.budget_s
        if answer_by is not None:
            total = min(total, (answer_by - self.now()).total_seconds())
            if total < MIN_BUDGET_S:
                raise ServiceError(ErrorCode.RATE_LIMITED,
                                   f"{op}: the caller stops waiting in {max(total, 0):.1f} s, too soon to send; "
                                   "nothing was sent", {"retry_after": BUSY_RETRY_AFTER_S, "sent": False})
        return Budget.start(total)

    async def place(self, req: m.PlaceOrderRequest, priority: str) -> m.PlaceOrderResult:
        budget = self._budget(req.answer_by, "orders.place")
        async with self._turn(budget, "orders.place"):
            return await self._place(req, priority, budget)

    async def _place(self, req: m.PlaceOrderRequest, priority: str, budget: Budget) -> m.PlaceOrderResult:
        coid = req.orders[0].coid
        self._invalidate_live()
        try:
            result = await self._send(budget, lambda **kw: self.portal.place_orders(req.account_id, req.orders,
                                                                                    priority, **kw))
        except GatewayError as exc:
            if exc.maybe_delivered and coid:
                return await self._resolve(req.account_id, coid, exc, priority, budget)
            raise
        if result.status == "rejected" and coid and DUPLICATE_COID in (result.message or "").lower():
            # IBKR refuses a cOID it saw in the last 24 hours: this order arrived before (compliance sends a cOID
            # again only when it could not learn whether the first send arrived). Submitted, by whatever id.
            found = await self._lookup_within(m.LookupRequest(account_id=req.account_id, client_order_id=coid),
                                              priority, budget)
            return m.PlaceOrderResult(
                status="submitted", client_order_id=coid, order_id=found.order_id, order_status=found.status,
                message=result.message, evidence={"duplicate_coid": True, **found.evidence},
            )
        return result

    async def reply(self, req: m.ReplyRequest, priority: str) -> m.PlaceOrderResult:
        budget = self._budget(req.answer_by, "orders.reply")
        async with self._turn(budget, "orders.reply"):
            return await self._reply(req, priority, budget)

    async def _reply(self, req: m.ReplyRequest, priority: str, budget: Budget) -> m.PlaceOrderResult:
        self._invalidate_live()
        try:
            result = await self._send(budget, lambda **kw: self.portal.reply(req.reply_id, req.confirmed,
                                                                             req.client_order_id, priority, **kw))
        except GatewayError as exc:
            if exc.maybe_delivered and req.confirmed:
                if req.account_id and req.client_order_id:
                    return await self._resolve(req.account_id, req.client_order_id, exc, priority, budget)
                return m.PlaceOrderResult(status="unknown", client_order_id=req.client_order_id,
                                          evidence=self._failure(exc, "no account_id/client_order_id to look up"))
            if exc.status == 400 and exc.gateway_error and "reply id" in exc.gateway_error.lower():
                raise ServiceError(ErrorCode.NOT_FOUND, f"IBKR no longer knows this question: {exc.gateway_error}",
                                   exc.details) from None
            raise
        if not req.confirmed and result.status == "rejected":
            result.message = result.message or "declined"
        return result

    async def modify(self, req: m.ModifyRequest, priority: str) -> m.PlaceOrderResult:
        budget = Budget.start(self.budget_s)
        self._invalidate_live()
        async with self._turn(budget, "orders.modify"):
            return await self._send(budget, lambda **kw: self.portal.modify_order(
                req.account_id, req.order_id, req.order, priority, **kw))

    async def cancel(self, req: m.CancelRequest, priority: str) -> m.CancelResult:
        budget = Budget.start(self.budget_s)
        self._invalidate_live()
        return await self._send(budget, lambda **kw: self.portal.cancel_order(req.account_id, req.order_id,
                                                                              priority, **kw))

    async def whatif(self, req: m.WhatIfRequest, priority: str) -> m.WhatIfResult:
        return await self.portal.whatif(req.account_id, req.orders, priority)

    # ---- reading -----------------------------------------------------------------------------

    async def live(self, req: m.LiveOrdersRequest, priority: str) -> m.LiveOrders:
        orders, as_of, complete = await self._live_orders(req.max_age_s, req.force, priority, LOOKUP_WAIT_S)
        if req.account_id:
            orders = [o for o in orders if o.account_id in (None, req.account_id)]
        if req.status:
            wanted = set(req.status)
            orders = [o for o in orders if o.status in wanted]
        return m.LiveOrders(orders=orders, as_of=as_of, complete=complete)

    async def _live_orders(self, max_age_s: float, force: bool, priority: str, max_wait_s: float | None = None,
                           timeout_s: float | None = None) -> tuple[list[m.LiveOrder], datetime, bool]:
        async with self._live_lock:
            epoch = self.portal.gateway.epoch
            cached = self._live
            if (not force and cached is not None and cached[1] == epoch
                    and time.monotonic() - cached[0] <= max_age_s):
                return cached[2], cached[3], True
            first = cached is None or cached[1] != epoch
            if force:
                # force=true clears IBKR's cache and answers an empty list: call again without it.
                await self.portal.live_orders(force=True, priority=priority, max_wait_s=LOOKUP_WAIT_S)
            answer = await self.portal.live_orders(priority=priority,
                                                   max_wait_s=LOOKUP_WAIT_S if force else max_wait_s,
                                                timeout_s=timeout_s)
            as_of = self.now()
            self._live = (time.monotonic(), self.portal.gateway.epoch, answer.orders, as_of)
            return answer.orders, as_of, not (first and answer.still_filling)

    async def status(self, req: m.OrderStatusRequest, priority: str) -> m.OrderStatusResult:
        try:
            return await self.portal.order_status(req.order_id, priority)
        except GatewayError as exc:
            if exc.status == 503:
                raise ServiceError(ErrorCode.NOT_FOUND, f"order {req.order_id} is not known to this brokerage session",
                                   exc.details) from None
            raise

    async def trades(self, req: m.TradesRequest, priority: str) -> m.Trades:
        return await self.portal.trades(req.days, req.account_id, priority, LOOKUP_WAIT_S)

    async def lookup(self, req: m.LookupRequest, priority: str) -> m.LookupResult:
        """Live orders first (a fresh call), then today's trades; `found: false` with the evidence."""
        return await self._lookup_within(req, priority, Budget.start(self.budget_s))

    async def _lookup_within(self, req: m.LookupRequest, priority: str, budget: Budget) -> m.LookupResult:
        """A lookup that ends with the budget; what it learnt until then stays in the evidence."""
        evidence: dict[str, Any] = {"checked_at": self.now().isoformat()}
        try:
            async with asyncio.timeout_at(budget.deadline):
                return await self._lookup(req, priority, budget, evidence)
        except TimeoutError:
            evidence["budget_exhausted"] = True
            return m.LookupResult(found=False, client_order_id=req.client_order_id, evidence=evidence)

    async def _lookup(self, req: m.LookupRequest, priority: str, budget: Budget,
                      evidence: dict[str, Any]) -> m.LookupResult:
        coid = req.client_order_id
        try:
            limits = self._read_limits(budget, LOOKUP_WAIT_S)
            orders, _, complete = await self._live_orders(0.0, False, priority, limits["max_wait_s"],
                                                          limits["timeout_s"])
            evidence["live_orders_checked"] = len(orders)
            evidence["live_orders_complete"] = complete
            for o in orders:
                if o.client_order_id == coid and o.account_id in (None, req.account_id):
                    return m.LookupResult(found=True, client_order_id=coid, order_id=o.order_id, status=o.status,
                                          source="live_orders", evidence=evidence)
        except ServiceError as exc:
            evidence["live_orders_error"] = {"code": str(exc.code), "message": exc.message}
        if budget.remaining() < MIN_LOOKUP_S:
            evidence["budget_exhausted"] = True
            return m.LookupResult(found=False, client_order_id=coid, evidence=evidence)
        try:
            limits = self._read_limits(budget, LOOKUP_WAIT_S)
            trades = (await self.portal.trades(1, req.account_id, priority, **limits)).trades
            evidence["trades_checked"] = len(trades)
            for t in trades:
                if t.client_order_id == coid and t.account_id in (None, req.account_id):
                    return m.LookupResult(found=True, client_order_id=coid, order_id=t.order_id, status="filled",
                                          source="trades", evidence=evidence)
        except ServiceError as exc:
            evidence["trades_error"] = {"code": str(exc.code), "message": exc.message}
        return m.LookupResult(found=False, client_order_id=coid, evidence=evidence)

    async def _resolve(self, account_id: str, coid: str, exc: GatewayError, priority: str,
                       budget: Budget) -> m.PlaceOrderResult:
        """The answer to an order POST was lost: look the cOID up within the budget, never send again."""
        log.warning("order answer lost (%s); resolving cOID by lookup", exc.code)
        evidence = self._failure(exc, None)
        request = m.LookupRequest(account_id=account_id, client_order_id=coid)
        rounds: list[dict[str, Any]] = []
        found: m.LookupResult | None = None
        exhausted = False
        for attempt in range(RESOLVE_ROUNDS):
            # a slow gateway may still be working on the order: look again one live-orders period later
            pause = RESOLVE_GRACE_S if attempt == 0 else 0.0
            if budget.remaining() < pause + MIN_LOOKUP_S:
                exhausted = True
                break
            await asyncio.sleep(pause)
            found = await self._lookup_within(request, priority, budget)
            rounds.append(found.evidence)
            exhausted = bool(found.evidence.get("budget_exhausted"))
            if found.found or exhausted:
                break
        evidence["lookups"] = rounds
        if found is not None and found.found:
            return m.PlaceOrderResult(status="submitted", client_order_id=coid, order_id=found.order_id,
                                      order_status=found.status, evidence={**evidence, "source": found.source})
        if exhausted:
            evidence["budget_exhausted"] = True
            evidence["budget_s"] = budget.total_s
        evidence["advice"] = "the order may still arrive: ask bridge.orders.lookup later; do not re-send"
        return m.PlaceOrderResult(status="unknown", client_order_id=coid, evidence=evidence)

    @staticmethod
    def _failure(exc: GatewayError, note: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"failure": {"code": str(exc.code), "message": exc.message, "details": exc.details}}
        if note:
            out["note"] = note
        return out

    async def suppress(self, req: m.SuppressRequest, priority: str) -> m.SuppressResult:
        return await self.portal.suppress(req.message_ids, priority)

    async def suppress_reset(self, priority: str) -> m.SuppressResult:
        return await self.portal.suppress_reset(priority)
