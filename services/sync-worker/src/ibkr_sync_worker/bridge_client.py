"""Typed requests to the gateway-bridge over NATS (the only way this service reaches Client Portal)."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ibkr_common.messages import bridge
from ibkr_common.replies import ErrorCode
from ibkr_common.rpc import Requester, Rpc, RpcError, RpcUnavailable
from ibkr_common.subjects import Subjects

log = logging.getLogger("ibkr_sync_worker.bridge")
R = TypeVar("R", bound=BaseModel)


class BridgeError(Exception):
    """A bridge request that failed: the bridge's error code, or TIMEOUT / GATEWAY_UNAVAILABLE."""

    def __init__(self, code: str, message: str, operation: str, details: Any = None) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.code = code
        self.message = message
        self.operation = operation
        self.details = details

    @property
    def not_authenticated(self) -> bool:
        return self.code == ErrorCode.NOT_AUTHENTICATED


class BridgeClient:
    """One method per bridge operation the sync-worker uses; replies come back as bridge models."""

    def __init__(self, nc: Requester, subjects: Subjects, *, timeout_s: float = 30.0) -> None:
        self.nc = nc
        self._rpc = Rpc(lambda: nc)
        self.subjects = subjects
        self.timeout_s = timeout_s
        self.requests = 0

    async def raw(self, operation: str, request: BaseModel) -> Any:
        """The bridge's `result` as plain JSON (for replies validated item by item)."""
        self.requests += 1
        try:
            return await self._rpc.call(self.subjects.bridge(operation),
                                        request.model_dump(mode="json", exclude_none=True), self.timeout_s)
        except RpcUnavailable as exc:
            if exc.sent:
                raise BridgeError(ErrorCode.TIMEOUT, f"no answer in {self.timeout_s:.0f} s", operation) from None
            raise BridgeError(ErrorCode.GATEWAY_UNAVAILABLE, "the gateway-bridge is not running", operation) from None
        except RpcError as exc:
            raise BridgeError(exc.code, exc.message, operation, exc.details) from None

    async def call(self, operation: str, request: BaseModel, result: type[R]) -> R:
        """Request `bridge.<operation>` and validate the result as `result`."""
        data = await self.raw(operation, request)
        try:
            return result.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise BridgeError("BAD_REPLY", f"unexpected reply shape: {problems}", operation,
                              exc.errors(include_url=False)[:20]) from None

    async def session_status(self) -> bridge.SessionStatus:
        return await self.call("session.status", bridge.Empty(priority="sync"), bridge.SessionStatus)

    async def accounts(self) -> bridge.AccountsList:
        return await self.call("accounts.list", bridge.Empty(priority="sync"), bridge.AccountsList)

    async def summary(self, account_id: str) -> bridge.AccountSummary:
        return await self.call("accounts.summary", bridge.AccountRequest(account_id=account_id, priority="sync"),
                               bridge.AccountSummary)

    async def invalidate_positions(self, account_id: str) -> bridge.InvalidateResult:
        return await self.call("positions.invalidate",
                               bridge.AccountRequest(account_id=account_id, priority="sync"), bridge.InvalidateResult)

    async def positions_page(self, account_id: str, page: int) -> Any:
        """One page, unparsed: the syncer validates each position on its own."""
        return await self.raw("positions.page",
                              bridge.PositionsPageRequest(account_id=account_id, page=page, priority="sync"))

    async def live_orders(self) -> Any:
        return await self.raw("orders.live", bridge.LiveOrdersRequest(priority="sync"))

    async def order_status(self, order_id: str) -> bridge.OrderStatusResult:
        return await self.call("orders.status", bridge.OrderStatusRequest(order_id=order_id, priority="sync"),
                               bridge.OrderStatusResult)

    async def trades(self, days: int, account_id: str | None = None) -> Any:
        return await self.raw("trades.list", bridge.TradesRequest(days=days, account_id=account_id, priority="sync"))
