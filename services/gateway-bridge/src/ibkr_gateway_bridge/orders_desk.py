"""Orders: placement that is never sent twice, question passthrough, the live-orders cache, lookup by cOID."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ibkr_common.messages import bridge as m
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge import parsing
from ibkr_gateway_bridge.client import CpClient, GatewayError

log = logging.getLogger(__name__)
DUPLICATE_COID = "local order id"
#: Queue wait allowed to a lookup: live orders and trades are 1 call / 5 s each.
LOOKUP_WAIT_S = 12.0
#: A lost order answer is looked up this many times (live orders, then trades), the first after a pause.
RESOLVE_ROUNDS = 2
RESOLVE_GRACE_S = 0.5


class OrderDesk:
    """The order operations of the bridge; only this class sends orders to IBKR."""

    def __init__(self, client: CpClient, now: Callable[[], datetime]) -> None:
        self.client = client
        self.now = now
        self._live: tuple[float, int, list[m.LiveOrder], datetime] | None = None
        self._live_lock = asyncio.Lock()
        # IBKR: one order conversation at a time ("don't submit another order until the previous one is
        # fully acknowledged"); handlers run concurrently, so placements, replies and modifications queue here.
        self._order_lock = asyncio.Lock()

    def _invalidate_live(self) -> None:
        self._live = None

    # ---- placement ---------------------------------------------------------------------------

    async def place(self, req: m.PlaceOrderRequest, priority: str) -> m.PlaceOrderResult:
        async with self._order_lock:
            return await self._place(req, priority)

    async def _place(self, req: m.PlaceOrderRequest, priority: str) -> m.PlaceOrderResult:
        coid = req.orders[0].coid
        body = [parsing.order_body(o, req.account_id) for o in req.orders]
        self._invalidate_live()
        try:
            raw = await self.client.place_orders(req.account_id, body, priority)
        except GatewayError as exc:
            if exc.maybe_delivered and coid:
                return await self._resolve(req.account_id, coid, exc, priority)
            raise
        result = parsing.place_result(raw, coid)
        if result.status == "rejected" and coid and DUPLICATE_COID in (result.message or "").lower():
            found = await self.lookup(m.LookupRequest(account_id=req.account_id, client_order_id=coid), priority)
            if found.found:
                return m.PlaceOrderResult(
                    status="submitted", client_order_id=coid, order_id=found.order_id, order_status=found.status,
                    message=result.message, evidence={"duplicate_coid": True, **found.evidence},
                )
        return result

    async def reply(self, req: m.ReplyRequest, priority: str) -> m.PlaceOrderResult:
        async with self._order_lock:
            return await self._reply(req, priority)

    async def _reply(self, req: m.ReplyRequest, priority: str) -> m.PlaceOrderResult:
        self._invalidate_live()
        try:
            raw = await self.client.reply(req.reply_id, req.confirmed, priority)
        except GatewayError as exc:
            if exc.maybe_delivered and req.confirmed:
                if req.account_id and req.client_order_id:
                    return await self._resolve(req.account_id, req.client_order_id, exc, priority)
                return m.PlaceOrderResult(status="unknown", client_order_id=req.client_order_id,
                                          evidence=self._failure(exc, "no account_id/client_order_id to look up"))
            if exc.status == 400 and exc.gateway_error and "reply id" in exc.gateway_error.lower():
                raise ServiceError(ErrorCode.NOT_FOUND, f"IBKR no longer knows this question: {exc.gateway_error}",
                                   exc.details) from None
            raise
        result = parsing.place_result(raw, req.client_order_id)
        if not req.confirmed and result.status == "rejected":
            result.message = result.message or "declined"
        return result

    async def modify(self, req: m.ModifyRequest, priority: str) -> m.PlaceOrderResult:
        self._invalidate_live()
        order = parsing.order_body(req.order, req.account_id)
        order.pop("cOID", None)
        async with self._order_lock:
            raw = await self.client.modify_order(req.account_id, req.order_id, order, priority)
        return parsing.place_result(raw, req.order.coid)

    async def cancel(self, req: m.CancelRequest, priority: str) -> m.CancelResult:
        self._invalidate_live()
        raw = await self.client.cancel_order(req.account_id, req.order_id, priority)
        body = raw if isinstance(raw, dict) else {}
        if body.get("error") is not None:
            text = str(body["error"])
            code = ErrorCode.NOT_FOUND if "exist" in text.lower() else ErrorCode.CONFLICT
            raise ServiceError(code, f"IBKR refused the cancel: {text}", {"gateway_error": text})
        conid = body.get("conid")
        return m.CancelResult(
            order_id=str(body.get("order_id", req.order_id)), message=body.get("msg"),
            conid=conid if isinstance(conid, int) and conid > 0 else None,
        )

    async def whatif(self, req: m.WhatIfRequest, priority: str) -> m.WhatIfResult:
        body = [parsing.order_body(o, req.account_id) for o in req.orders]
        for order in body:
            order.pop("cOID", None)
        raw = await self.client.whatif(req.account_id, body, priority)
        return parsing.whatif(raw)

    # ---- reading -----------------------------------------------------------------------------

    async def live(self, req: m.LiveOrdersRequest, priority: str) -> m.LiveOrders:
        orders, as_of, complete = await self._live_orders(req.max_age_s, req.force, priority, LOOKUP_WAIT_S)
        if req.account_id:
            orders = [o for o in orders if o.account_id in (None, req.account_id)]
        if req.status:
            wanted = set(req.status)
            orders = [o for o in orders if o.status in wanted]
        return m.LiveOrders(orders=orders, as_of=as_of, complete=complete)

    async def _live_orders(self, max_age_s: float, force: bool, priority: str, max_wait_s: float | None = None
                           ) -> tuple[list[m.LiveOrder], datetime, bool]:
        async with self._live_lock:
            epoch = self.client.t.epoch
            cached = self._live
            if (not force and cached is not None and cached[1] == epoch
                    and time.monotonic() - cached[0] <= max_age_s):
                return cached[2], cached[3], True
            first = cached is None or cached[1] != epoch
            if force:
                # force=true clears IBKR's cache and answers an empty list: call again without it.
                await self.client.live_orders(force=True, priority=priority, max_wait_s=LOOKUP_WAIT_S)
            raw = await self.client.live_orders(priority=priority, max_wait_s=LOOKUP_WAIT_S if force else max_wait_s)
            orders = parsing.live_orders(raw)
            as_of = self.now()
            self._live = (time.monotonic(), self.client.t.epoch, orders, as_of)
            complete = not (first and not orders and isinstance(raw, dict) and raw.get("snapshot") is False)
            return orders, as_of, complete

    async def status(self, req: m.OrderStatusRequest, priority: str) -> m.OrderStatusResult:
        try:
            raw = await self.client.order_status(req.order_id, priority)
        except GatewayError as exc:
            if exc.status == 503:
                raise ServiceError(ErrorCode.NOT_FOUND, f"order {req.order_id} is not known to this brokerage session",
                                   exc.details) from None
            raise
        return parsing.order_status_result(req.order_id, raw)

    async def trades(self, req: m.TradesRequest, priority: str) -> m.Trades:
        raw = await self.client.trades(req.days, req.account_id, priority, LOOKUP_WAIT_S)
        return m.Trades(trades=parsing.trades(raw))

    async def lookup(self, req: m.LookupRequest, priority: str) -> m.LookupResult:
        """Live orders first (a fresh call), then today's trades; `found: false` with the evidence."""
        evidence: dict[str, Any] = {"checked_at": self.now().isoformat()}
        coid = req.client_order_id
        try:
            orders, _, complete = await self._live_orders(0.0, False, priority, LOOKUP_WAIT_S)
            evidence["live_orders_checked"] = len(orders)
            evidence["live_orders_complete"] = complete
            for o in orders:
                if o.client_order_id == coid and o.account_id in (None, req.account_id):
                    return m.LookupResult(found=True, client_order_id=coid, order_id=o.order_id, status=o.status,
                                          source="live_orders", evidence=evidence)
        except ServiceError as exc:
            evidence["live_orders_error"] = {"code": str(exc.code), "message": exc.message}
        try:
            trades = parsing.trades(await self.client.trades(1, req.account_id, priority, LOOKUP_WAIT_S))
            evidence["trades_checked"] = len(trades)
            for t in trades:
                if t.client_order_id == coid and t.account_id in (None, req.account_id):
                    return m.LookupResult(found=True, client_order_id=coid, order_id=t.order_id, status="filled",
                                          source="trades", evidence=evidence)
        except ServiceError as exc:
            evidence["trades_error"] = {"code": str(exc.code), "message": exc.message}
        return m.LookupResult(found=False, client_order_id=coid, evidence=evidence)

    async def _resolve(self, account_id: str, coid: str, exc: GatewayError, priority: str) -> m.PlaceOrderResult:
        """The answer to an order POST was lost: look the cOID up, never send again."""
        log.warning("order answer lost (%s); resolving cOID by lookup", exc.code)
        evidence = self._failure(exc, None)
        request = m.LookupRequest(account_id=account_id, client_order_id=coid)
        rounds: list[dict[str, Any]] = []
        for attempt in range(RESOLVE_ROUNDS):
            # a slow gateway may still be working on the order: look again one live-orders period later
            await asyncio.sleep(RESOLVE_GRACE_S if attempt == 0 else 0)
            found = await self.lookup(request, priority)
            rounds.append(found.evidence)
            if found.found:
                break
        evidence["lookups"] = rounds
        if found.found:
            return m.PlaceOrderResult(status="submitted", client_order_id=coid, order_id=found.order_id,
                                      order_status=found.status, evidence={**evidence, "source": found.source})
        evidence["advice"] = "the order may still arrive: ask bridge.orders.lookup later; do not re-send"
        return m.PlaceOrderResult(status="unknown", client_order_id=coid, evidence=evidence)

    @staticmethod
    def _failure(exc: GatewayError, note: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"failure": {"code": str(exc.code), "message": exc.message, "details": exc.details}}
        if note:
            out["note"] = note
        return out

    async def suppress(self, req: m.SuppressRequest, priority: str) -> m.SuppressResult:
        raw = await self.client.suppress(req.message_ids, priority)
        return m.SuppressResult(status=str((raw or {}).get("status", "submitted")) if isinstance(raw, dict)
                                else "submitted")

    async def suppress_reset(self, priority: str) -> m.SuppressResult:
        raw = await self.client.suppress_reset(priority)
        return m.SuppressResult(status=str(raw.get("status", "submitted")) if isinstance(raw, dict) else "submitted")
