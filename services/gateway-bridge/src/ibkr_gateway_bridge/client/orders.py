"""Order endpoints (REFERENCE 7.4). Placement, reply and modify are never re-sent by the transport.

`timeout_s` (read timeout) and `max_wait_s` (rate-limit queue) let the order desk fit a call into its budget.
"""

from __future__ import annotations

from typing import Any

from ibkr_gateway_bridge.client.transport import Transport


class OrdersApi:
    t: Transport

    async def place_orders(self, account_id: str, orders: list[dict[str, Any]], priority: str = "order", *,
                           timeout_s: float | None = None, max_wait_s: float | None = None) -> Any:
        # retry_safe: only a 400 "no bridge"/"query /accounts first" is retried; it proves nothing was placed.
        return await self.t.call("POST", "/iserver/account/{accountId}/orders", path={"accountId": account_id},
                                 body={"orders": orders}, priority=priority, retry_safe=True,
                                 timeout_s=timeout_s, max_wait_s=max_wait_s)

    async def reply(self, reply_id: str, confirmed: bool, priority: str = "order", *,
                    timeout_s: float | None = None, max_wait_s: float | None = None) -> Any:
        return await self.t.call("POST", "/iserver/reply/{replyId}", path={"replyId": reply_id},
                                 body={"confirmed": confirmed}, priority=priority, retry_safe=False,
                                 timeout_s=timeout_s, max_wait_s=max_wait_s)

    async def cancel_order(self, account_id: str, order_id: str, priority: str = "order", *,
                           timeout_s: float | None = None, max_wait_s: float | None = None) -> Any:
        return await self.t.call("DELETE", "/iserver/account/{accountId}/order/{orderId}",
                                 path={"accountId": account_id, "orderId": order_id}, priority=priority,
                                 retry_safe=True, timeout_s=timeout_s, max_wait_s=max_wait_s)

    async def modify_order(self, account_id: str, order_id: str, order: dict[str, Any],
                           priority: str = "order", *, timeout_s: float | None = None,
                           max_wait_s: float | None = None) -> Any:
        return await self.t.call("POST", "/iserver/account/{accountId}/order/{orderId}",
                                 path={"accountId": account_id, "orderId": order_id}, body=order,
                                 priority=priority, retry_safe=True, timeout_s=timeout_s, max_wait_s=max_wait_s)

    async def whatif(self, account_id: str, orders: list[dict[str, Any]], priority: str = "order") -> Any:
        return await self.t.call("POST", "/iserver/account/{accountId}/orders/whatif",
                                 path={"accountId": account_id}, body={"orders": orders}, priority=priority,
                                 retry_safe=True)

    async def live_orders(self, *, force: bool = False, account_id: str | None = None,
                          priority: str = "account", max_wait_s: float | None = None,
                          timeout_s: float | None = None) -> Any:
        """Never filtered at IBKR: a `filters` call can stop later updates (REFERENCE 4.5)."""
        params: dict[str, Any] = {}
        if force:
            params["force"] = "true"
        if account_id:
            params["accountId"] = account_id
        return await self.t.call("GET", "/iserver/account/orders", params=params or None, priority=priority,
                                 max_wait_s=max_wait_s, timeout_s=timeout_s)

    async def order_status(self, order_id: str, priority: str = "order") -> Any:
        return await self.t.call("GET", "/iserver/account/order/status/{orderId}", path={"orderId": order_id},
                                 priority=priority)

    async def trades(self, days: int = 1, account_id: str | None = None, priority: str = "account",
                     max_wait_s: float | None = None, timeout_s: float | None = None) -> Any:
        params: dict[str, Any] = {"days": days}
        if account_id:
            params["accountId"] = account_id
        return await self.t.call("GET", "/iserver/account/trades", params=params, priority=priority,
                                 max_wait_s=max_wait_s, timeout_s=timeout_s)

    async def suppress(self, message_ids: list[str], priority: str = "order") -> Any:
        return await self.t.call("POST", "/iserver/questions/suppress", body={"messageIds": message_ids},
                                 priority=priority, retry_safe=True)

    async def suppress_reset(self, priority: str = "order") -> Any:
        return await self.t.call("POST", "/iserver/questions/suppress/reset", body={}, priority=priority,
                                 retry_safe=True)
