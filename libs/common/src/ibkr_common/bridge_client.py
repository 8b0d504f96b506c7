"""The one typed way to call the gateway-bridge (`ibkr.<conn>.bridge.<op>`) from another service.

Requests and results are the bridge's own models (`ibkr_common.messages.bridge`, `.contracts`);
every call goes through the broker's request API (`ibkr_common.rpc.Rpc`). Failures are one
exception, `BridgeError`, carrying the bridge's error code, or `TIMEOUT` (the request went out and
no answer came: the bridge may have acted) or `GATEWAY_UNAVAILABLE` (no bridge listens: nothing
was sent).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ibkr_common.messages import bridge as m
from ibkr_common.messages import contracts as c
from ibkr_common.messages.bridge_base import Priority
from ibkr_common.replies import ErrorCode
from ibkr_common.rpc import RequestBroker, Rpc, RpcError, RpcUnavailable
from ibkr_common.subjects import Subjects

R = TypeVar("R", bound=BaseModel)


class BridgeError(Exception):
    """A bridge request that failed: the bridge's error code, or TIMEOUT / GATEWAY_UNAVAILABLE."""

    def __init__(self, code: str, message: str, operation: str, details: Any = None, *, answered: bool = True,
                 sent: bool = True) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.code = code
        self.message = message
        self.operation = operation
        self.details = details
        #: False when no reply came back (nobody listened, or no answer in time).
        self.answered = answered
        #: False only when no bridge listened: the request certainly reached nobody.
        self.sent = sent

    @property
    def not_authenticated(self) -> bool:
        """The gateway has no authenticated session."""
        return self.code == ErrorCode.NOT_AUTHENTICATED

    @property
    def uncertain(self) -> bool:
        """The request went out and no answer came back: the bridge may have acted on it."""
        return not self.answered and self.sent


def bad_shape(operation: str, exc: ValidationError) -> BridgeError:
    """A BAD_REPLY error naming the first fields of a result that does not fit its model."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
    return BridgeError("BAD_REPLY", f"unexpected reply shape: {problems}", operation,
                       exc.errors(include_url=False)[:20])


class BridgeClient:
    """One method per bridge operation; results come back as the bridge's pydantic models.

    `priority` is the default queue priority of this caller's requests (the bridge's rate limiter
    serves `order` before `session` before `account` before `sync`); a method may override it.
    """

    def __init__(self, broker: RequestBroker, subjects: Subjects, *, timeout_s: float = 30.0,
                 priority: Priority | None = None) -> None:
        self.rpc = Rpc(broker)
        self.subjects = subjects
        self.timeout_s = timeout_s
        self.priority = priority
        #: Requests sent so far (benchmarks and tests count them).
        self.requests = 0

    async def raw(self, operation: str, request: BaseModel, *, timeout_s: float | None = None) -> Any:
        """The bridge's `result` as plain JSON (for replies validated item by item)."""
        self.requests += 1
        timeout = timeout_s or self.timeout_s
        if self.priority is not None and isinstance(request, m.BridgeRequest) and request.priority is None:
            request = request.model_copy(update={"priority": self.priority})
        try:
            return await self.rpc.call(self.subjects.bridge(operation),
                                       request.model_dump(mode="json", exclude_none=True), timeout)
        except RpcUnavailable as exc:
            if exc.sent:
                raise BridgeError(ErrorCode.TIMEOUT, f"no answer in {timeout:.1f} s", operation,
                                  answered=False) from None
            raise BridgeError(ErrorCode.GATEWAY_UNAVAILABLE, "the gateway-bridge is not running", operation,
                              answered=False, sent=False) from None
        except RpcError as exc:
            raise BridgeError(exc.code, exc.message, operation, exc.details) from None

    async def call(self, operation: str, request: BaseModel, result: type[R], *,
                   timeout_s: float | None = None) -> R:
        """Request `bridge.<operation>` and validate the result as `result`."""
        data = await self.raw(operation, request, timeout_s=timeout_s)
        try:
            return result.model_validate(data)
        except ValidationError as exc:
            raise bad_shape(operation, exc) from None

    # ---- session ---------------------------------------------------------------------------
    async def session_status(self) -> m.SessionStatus:
        """The gateway's auth status (`/iserver/auth/status`)."""
        return await self.call("session.status", m.Empty(), m.SessionStatus)

    async def tickle(self) -> m.TickleResult:
        """Keep the session alive and read its flags."""
        return await self.call("session.tickle", m.Empty(), m.TickleResult)

    async def validate(self) -> m.ValidateResult:
        """`sso/validate`: who is logged in and since when."""
        return await self.call("session.validate", m.Empty(), m.ValidateResult)

    async def init(self, compete: bool) -> m.SessionStatus:
        """Open the brokerage session, optionally taking it over from another login."""
        return await self.call("session.init", m.SessionInitRequest(compete=compete), m.SessionStatus)

    async def reauthenticate(self) -> m.ReauthenticateResult:
        """Ask the gateway to re-authenticate the brokerage session."""
        return await self.call("session.reauthenticate", m.Empty(), m.ReauthenticateResult)

    async def logout(self) -> m.LogoutResult:
        """End the gateway's session."""
        return await self.call("session.logout", m.Empty(), m.LogoutResult)

    # ---- accounts and positions ------------------------------------------------------------
    async def accounts(self) -> m.AccountsList:
        """The brokerage accounts of the login and the selected one."""
        return await self.call("accounts.list", m.Empty(), m.AccountsList)

    async def summary(self, account_id: str) -> m.AccountSummary:
        """One account's summary (equity, buying power, funds)."""
        return await self.call("accounts.summary", m.AccountRequest(account_id=account_id), m.AccountSummary)

    async def positions(self, account_id: str) -> m.Positions:
        """Every position of an account (all pages)."""
        return await self.call("positions.list", m.AccountRequest(account_id=account_id), m.Positions)

    async def positions_page(self, account_id: str, page: int) -> Any:
        """One page of positions, unparsed: a syncer validates each position on its own."""
        return await self.raw("positions.page", m.PositionsPageRequest(account_id=account_id, page=page))

    async def invalidate_positions(self, account_id: str) -> m.InvalidateResult:
        """Drop the gateway's cached positions of an account."""
        return await self.call("positions.invalidate", m.AccountRequest(account_id=account_id),
                               m.InvalidateResult)

    # ---- orders ----------------------------------------------------------------------------
    async def place(self, request: m.PlaceOrderRequest, *, timeout_s: float | None = None) -> m.PlaceOrderResult:
        """Send an order (compliance only)."""
        return await self.call("orders.place", request, m.PlaceOrderResult, timeout_s=timeout_s)

    async def reply(self, request: m.ReplyRequest, *, timeout_s: float | None = None) -> m.PlaceOrderResult:
        """Answer one of IBKR's questions about an order (compliance only)."""
        return await self.call("orders.reply", request, m.PlaceOrderResult, timeout_s=timeout_s)

    async def modify(self, request: m.ModifyRequest, *, timeout_s: float | None = None) -> m.PlaceOrderResult:
        """Change a working order (compliance only)."""
        return await self.call("orders.modify", request, m.PlaceOrderResult, timeout_s=timeout_s)

    async def cancel(self, request: m.CancelRequest) -> m.CancelResult:
        """Cancel a working order (compliance only)."""
        return await self.call("orders.cancel", request, m.CancelResult)

    async def lookup(self, request: m.LookupRequest, *, timeout_s: float | None = None) -> m.LookupResult:
        """Find an order at the gateway by its cOID (resolving a lost answer)."""
        return await self.call("orders.lookup", request, m.LookupResult, timeout_s=timeout_s)

    async def live_orders(self) -> Any:
        """The gateway's live orders, unparsed: a syncer validates each order on its own."""
        return await self.raw("orders.live", m.LiveOrdersRequest())

    async def order_status(self, order_id: str) -> m.OrderStatusResult:
        """One order's status by IBKR's order id."""
        return await self.call("orders.status", m.OrderStatusRequest(order_id=order_id), m.OrderStatusResult)

    async def trades(self, days: int, account_id: str | None = None) -> Any:
        """Executions of the last `days` days, unparsed: a syncer validates each trade on its own."""
        return await self.raw("trades.list", m.TradesRequest(days=days, account_id=account_id))

    # ---- contracts and market data ---------------------------------------------------------
    async def snapshot(self, conids: list[int], *, timeout_s: float | None = None) -> m.Snapshots:
        """Quotes of the given contracts."""
        return await self.call("marketdata.snapshot", m.SnapshotRequest(conids=conids), m.Snapshots,
                               timeout_s=timeout_s)

    async def secdef(self, conids: list[int], *, timeout_s: float | None = None) -> c.SecdefResult:
        """Contract definitions of conids."""
        return await self.call("contracts.secdef", c.SecdefRequest(conids=conids), c.SecdefResult,
                               timeout_s=timeout_s)

    async def secdef_info(self, request: c.SecdefInfoRequest, *, timeout_s: float | None = None) -> c.SecdefInfoResult:
        """Option contracts of an underlying for a month, strike and right."""
        return await self.call("contracts.secdef_info", request, c.SecdefInfoResult, timeout_s=timeout_s)

    async def search(self, request: c.ContractSearchRequest, *, timeout_s: float | None = None
                     ) -> c.ContractSearchResult:
        """Contracts matching a symbol."""
        return await self.call("contracts.search", request, c.ContractSearchResult, timeout_s=timeout_s)
