"""Order endpoints (REFERENCE 7.4). Placement, reply and modify are never re-sent by the gateway client.

`timeout_s` (read timeout) and `max_wait_s` (rate-limit queue) let the order desk fit a call into its budget.
"""

from __future__ import annotations

from typing import Any

from ibkr_common.messages import bridge as m
from ibkr_gateway_bridge import parsing_orders
from ibkr_gateway_bridge.client.gateway import Gateway
from ibkr_gateway_bridge.parsing_orders import LiveOrdersAnswer

__all__ = ["LiveOrdersAnswer", "OrdersApi"]


class OrdersApi:
    """Placing, answering, modifying and cancelling orders; live orders, status, trades, what-if."""

    gateway: Gateway

    async def place_orders(self, account_id: str, orders: list[m.OrderSpec], priority: str = "order", *,
                           timeout_s: float | None = None, max_wait_s: float | None = None) -> m.PlaceOrderResult:
        """POST /iserver/account/{accountId}/orders; the result names the first order's cOID."""
        body = [parsing_orders.order_body(o, account_id) for o in orders]
        # retry_safe: only a 400 "no bridge"/"query /accounts first" is retried; it proves nothing was placed.
        answer = await self.gateway.call("POST", "/iserver/account/{accountId}/orders", path={"accountId": account_id},
                                         body={"orders": body}, priority=priority, retry_safe=True,
                                         timeout_s=timeout_s, max_wait_s=max_wait_s)
        return parsing_orders.place_result(answer, orders[0].coid)

    async def reply(self, reply_id: str, confirmed: bool, client_order_id: str | None = None,
                    priority: str = "order", *, timeout_s: float | None = None,
                    max_wait_s: float | None = None) -> m.PlaceOrderResult:
        """POST /iserver/reply/{replyId}: answer one of IBKR's questions about an order."""
        answer = await self.gateway.call("POST", "/iserver/reply/{replyId}", path={"replyId": reply_id},
                                         body={"confirmed": confirmed}, priority=priority, retry_safe=False,
                                         timeout_s=timeout_s, max_wait_s=max_wait_s)
        return parsing_orders.place_result(answer, client_order_id)

    async def cancel_order(self, account_id: str, order_id: str, priority: str = "order", *,
                           timeout_s: float | None = None, max_wait_s: float | None = None) -> m.CancelResult:
        """DELETE /iserver/account/{accountId}/order/{orderId}; IBKR's refusal is NOT_FOUND or CONFLICT."""
        answer = await self.gateway.call("DELETE", "/iserver/account/{accountId}/order/{orderId}",
                                         path={"accountId": account_id, "orderId": order_id}, priority=priority,
                                         retry_safe=True, timeout_s=timeout_s, max_wait_s=max_wait_s)
        return parsing_orders.cancel_result(order_id, answer)

    async def modify_order(self, account_id: str, order_id: str, order: m.OrderSpec, priority: str = "order", *,
                           timeout_s: float | None = None, max_wait_s: float | None = None) -> m.PlaceOrderResult:
        """POST /iserver/account/{accountId}/order/{orderId} (a modification carries no cOID)."""
        body = parsing_orders.order_body(order, account_id)
        body.pop("cOID", None)
        answer = await self.gateway.call("POST", "/iserver/account/{accountId}/order/{orderId}",
                                         path={"accountId": account_id, "orderId": order_id}, body=body,
                                         priority=priority, retry_safe=True, timeout_s=timeout_s,
                                         max_wait_s=max_wait_s)
        return parsing_orders.place_result(answer, order.coid)

    async def whatif(self, account_id: str, orders: list[m.OrderSpec], priority: str = "order") -> m.WhatIfResult:
        """POST /iserver/account/{accountId}/orders/whatif: margin and commission; places nothing."""
        body = [parsing_orders.order_body(o, account_id) for o in orders]
        for order in body:
            order.pop("cOID", None)
        answer = await self.gateway.call("POST", "/iserver/account/{accountId}/orders/whatif",
                                         path={"accountId": account_id}, body={"orders": body}, priority=priority,
                                         retry_safe=True)
        return parsing_orders.whatif(answer)

    async def live_orders(self, *, force: bool = False, account_id: str | None = None,
                          priority: str = "account", max_wait_s: float | None = None,
                          timeout_s: float | None = None) -> LiveOrdersAnswer:
        """GET /iserver/account/orders. Never filtered at IBKR: a `filters` call can stop later updates
        (REFERENCE 4.5)."""
        params: dict[str, Any] = {}
        if force:
            params["force"] = "true"
        if account_id:
            params["accountId"] = account_id
        answer = await self.gateway.call("GET", "/iserver/account/orders", params=params or None, priority=priority,
                                         max_wait_s=max_wait_s, timeout_s=timeout_s)
        return parsing_orders.live_orders_answer(answer)

    async def order_status(self, order_id: str, priority: str = "order") -> m.OrderStatusResult:
        """GET /iserver/account/order/status/{orderId}."""
        answer = await self.gateway.call("GET", "/iserver/account/order/status/{orderId}",
                                         path={"orderId": order_id}, priority=priority)
        return parsing_orders.order_status_result(order_id, answer)

    async def trades(self, days: int = 1, account_id: str | None = None, priority: str = "account",
                     max_wait_s: float | None = None, timeout_s: float | None = None) -> m.Trades:
        """GET /iserver/account/trades: executions of the last `days` days."""
        params: dict[str, Any] = {"days": days}
        if account_id:
            params["accountId"] = account_id
        answer = await self.gateway.call("GET", "/iserver/account/trades", params=params, priority=priority,
                                         max_wait_s=max_wait_s, timeout_s=timeout_s)
        return m.Trades(trades=parsing_orders.trades(answer))

    async def suppress(self, message_ids: list[str], priority: str = "order") -> m.SuppressResult:
        """POST /iserver/questions/suppress: questions IBKR stops asking."""
        answer = await self.gateway.call("POST", "/iserver/questions/suppress", body={"messageIds": message_ids},
                                         priority=priority, retry_safe=True)
        return parsing_orders.suppress_result(answer)

    async def suppress_reset(self, priority: str = "order") -> m.SuppressResult:
        """POST /iserver/questions/suppress/reset."""
        answer = await self.gateway.call("POST", "/iserver/questions/suppress/reset", body={}, priority=priority,
                                         retry_safe=True)
        return parsing_orders.suppress_result(answer)
