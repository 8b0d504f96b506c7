"""The client's sections, one per area of the contract: `ib.orders`, `ib.positions`, `ib.account`, ..."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from ibkr_client.errors import validated
from ibkr_contract.audit import AuditEvent, AuditQueryRequest, AuditQueryResult, AuditVerifyRequest, AuditVerifyResult
from ibkr_contract.compliance import (
    AcknowledgeRequest,
    AcknowledgeResult,
    ComplianceStatus,
    HaltRequest,
    HaltResult,
    StatusRequest,
)
from ibkr_contract.contracts import ContractSearchRequest, ContractSearchResult, OptionChain, OptionChainRequest
from ibkr_contract.orders import (
    CancelRequest,
    CancelResult,
    ConfirmRequest,
    Decision,
    ModifyRequest,
    OrderRequest,
    OrderResult,
)
from ibkr_contract.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from ibkr_contract.session import SessionLogoutResult, SessionRequest, SessionStatusResult
from ibkr_contract.sync import (
    AccountGetRequest,
    AccountView,
    ClosePositionResult,
    OrdersGetRequest,
    OrdersResult,
    PositionsCloseRequest,
    PositionsExerciseRequest,
    PositionsGetRequest,
    PositionsResult,
    SyncTriggerRequest,
    SyncTriggerResult,
)

if TYPE_CHECKING:
    from ibkr_client.client import IbkrClient


class Paged(Protocol):
    """A page of a paged result (`OrdersResult`, `PositionsResult`)."""

    next_cursor: str | None


P = TypeVar("P", bound=Paged)


class Section:
    """Base of a section: the client it sends through."""

    def __init__(self, client: IbkrClient) -> None:
        self.client = client


async def walk(page: Callable[[str | None], Awaitable[P]]) -> AsyncIterator[P]:
    """The pages `page(cursor)` answers, from the first (cursor None) until one has no `next_cursor`."""
    cursor: str | None = None
    while True:
        found = await page(cursor)
        yield found
        cursor = found.next_cursor
        if cursor is None:
            return


def new_client_order_id(prefix: str = "cli") -> str:
    """A fresh idempotency key (`<prefix>-<24 hex>`)."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def build_order(client: IbkrClient, fields: dict[str, Any]) -> OrderRequest:
    """An OrderRequest from keywords: `symbol` (a stock) or `conid` stand for `instrument`; `client_order_id`
    defaults to a fresh one and `environment` to the client's."""
    fields = dict(fields)
    symbol, conid = fields.pop("symbol", None), fields.pop("conid", None)
    if "instrument" not in fields and "legs" not in fields and (symbol or conid):
        fields["instrument"] = {"conid": conid} if conid else {"symbol": symbol, "sec_type": "STK"}
    fields.setdefault("client_order_id", new_client_order_id())
    fields.setdefault("environment", client.environment)
    return validated(OrderRequest, fields)


class Orders(Section):
    """`orders.*`: submit, check, confirm, cancel, modify (compliance) and get (sync-worker)."""

    async def submit(
        self, order: OrderRequest | None = None, /, *, timeout: float | None = None, **fields: Any
    ) -> OrderResult:
        """Decide and, when allowed, place the order once. A block raises `ComplianceBlocked` (or
        `TradingHalted`, `EnvironmentMismatch`); a question from IBKR answers `status="confirmation_required"`."""
        request = order or build_order(self.client, fields)
        return await self.client.call(
            "orders.submit", request, OrderResult, timeout=timeout or self.client.order_timeout
        )

    async def check(
        self, order: OrderRequest | None = None, /, *, timeout: float | None = None, **fields: Any
    ) -> Decision:
        """The Decision compliance would make (whatever it is); nothing is sent."""
        request = order or build_order(self.client, fields)
        return await self.client.call("orders.check", request, Decision, timeout=timeout)

    async def confirm(
        self,
        client_order_id: str,
        reply_id: str,
        confirmed: bool = True,
        *,
        answered_by: str | None = None,
        user_id: str | None = None,
        timeout: float | None = None,
    ) -> OrderResult:
        """Answer IBKR's question about an order (`confirmed=False` declines it)."""
        request = validated(
            ConfirmRequest,
            {
                "client_order_id": client_order_id,
                "reply_id": reply_id,
                "confirmed": confirmed,
                "answered_by": answered_by,
                "user_id": user_id,
            },
        )
        return await self.client.call(
            "orders.confirm", request, OrderResult, timeout=timeout or self.client.order_timeout
        )

    async def cancel(
        self,
        account_id: str,
        order_id: str | None = None,
        *,
        client_order_id: str | None = None,
        user_id: str | None = None,
        timeout: float | None = None,
    ) -> CancelResult:
        """Cancel an order, by IBKR's order id or our client_order_id."""
        request = validated(
            CancelRequest, {"account_id": account_id, "order_id": order_id, "client_order_id": client_order_id,
                            "user_id": user_id}
        )
        return await self.client.call(
            "orders.cancel", request, CancelResult, timeout=timeout or self.client.order_timeout
        )

    async def modify(
        self,
        account_id: str,
        order_id: str,
        *,
        quantity: Decimal | int | str | None = None,
        limit_price: Decimal | int | str | None = None,
        stop_price: Decimal | int | str | None = None,
        tif: Literal["DAY", "GTC", "IOC"] | None = None,
        user_id: str | None = None,
        timeout: float | None = None,
    ) -> OrderResult:
        """Change an order (checked again by compliance)."""
        request = validated(
            ModifyRequest,
            {
                "account_id": account_id,
                "order_id": order_id,
                "quantity": quantity,
                "limit_price": limit_price,
                "stop_price": stop_price,
                "tif": tif,
                "user_id": user_id,
            },
        )
        return await self.client.call(
            "orders.modify", request, OrderResult, timeout=timeout or self.client.order_timeout
        )

    async def get(
        self,
        account_id: str,
        status: str | Sequence[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> OrdersResult:
        """One page of an account's orders as last synced, newest first (`status="open"`: those that can still
        change); pass its `next_cursor` as `cursor` for the next page (None on the last). `limit` is the
        deprecated name of `page_size`."""
        wanted = status if isinstance(status, str) or status is None else list(status)
        request = validated(OrdersGetRequest, {"account_id": account_id, "status": wanted, "cursor": cursor,
                                               "page_size": page_size if limit is None else limit})
        return await self.client.call("orders.get", request, OrdersResult, timeout=timeout)

    def pages(self, account_id: str, status: str | Sequence[str] | None = None, page_size: int = MAX_PAGE_SIZE,
              *, timeout: float | None = None) -> AsyncIterator[OrdersResult]:
        """Every page of `get`, first to last (each order once, however many arrive meanwhile)."""
        return walk(lambda cursor: self.get(account_id, status, page_size, cursor=cursor, timeout=timeout))


class Positions(Section):
    """`positions.*` (sync-worker)."""

    async def get(self, account_id: str, page_size: int = DEFAULT_PAGE_SIZE, *, cursor: str | None = None,
                  timeout: float | None = None) -> PositionsResult:
        """One page of an account's positions as last synced, by symbol; `next_cursor` asks for the next."""
        request = validated(PositionsGetRequest, {"account_id": account_id, "page_size": page_size, "cursor": cursor})
        return await self.client.call("positions.get", request, PositionsResult, timeout=timeout)

    def pages(self, account_id: str, page_size: int = MAX_PAGE_SIZE, *,
              timeout: float | None = None) -> AsyncIterator[PositionsResult]:
        """Every page of `get`, first to last."""
        return walk(lambda cursor: self.get(account_id, page_size, cursor=cursor, timeout=timeout))

    async def close(
        self, account_id: str, conid: int, user_id: str, *, timeout: float | None = None, **fields: Any
    ) -> ClosePositionResult:
        """Close (part of) a position through compliance (`quantity`, `order_type`, prices, `tif` optional)."""
        request = validated(
            PositionsCloseRequest, {"account_id": account_id, "conid": conid, "user_id": user_id, **fields}
        )
        return await self.client.call(
            "positions.close", request, ClosePositionResult, timeout=timeout or self.client.order_timeout
        )

    async def exercise(self, account_id: str, conid: int, *, timeout: float | None = None) -> None:
        """Always raises `NotSupported` (the Client Portal API has no exercise call)."""
        await self.client.request(
            "positions.exercise",
            validated(PositionsExerciseRequest, {"account_id": account_id, "conid": conid}),
            timeout=timeout,
        )


class Account(Section):
    """`account.get` (sync-worker)."""

    async def get(self, account_id: str, *, timeout: float | None = None) -> AccountView:
        """The account summary of the last sync."""
        return await self.client.call(
            "account.get", validated(AccountGetRequest, {"account_id": account_id}), AccountView, timeout=timeout
        )


class Sync(Section):
    """`sync.trigger` (sync-worker)."""

    async def trigger(self, account_id: str | None = None, *, user_id: str | None = None,
                      timeout: float | None = None) -> SyncTriggerResult:
        """Sync now (one account or all) and answer once done; `user_id`: whom a trusted caller acts for."""
        return await self.client.call(
            "sync.trigger",
            validated(SyncTriggerRequest, {"account_id": account_id, "user_id": user_id}),
            SyncTriggerResult,
            timeout=timeout or self.client.sync_timeout,
        )


class Session(Section):
    """`session.*` (session-keeper)."""

    async def status(self, *, timeout: float | None = None) -> SessionStatusResult:
        """The brokerage session as the keeper sees it."""
        return await self.client.call("session.status", SessionRequest(), SessionStatusResult, timeout=timeout)

    async def logout(self, *, user_id: str | None = None, timeout: float | None = None) -> SessionLogoutResult:
        """End the gateway session; `user_id`: whom a trusted caller acts for."""
        return await self.client.call("session.logout", validated(SessionRequest, {"user_id": user_id}),
                                      SessionLogoutResult, timeout=timeout)

    async def reauthenticate(self, *, user_id: str | None = None, timeout: float | None = None
                             ) -> SessionStatusResult:
        """Ask the gateway to authenticate again; `user_id`: whom a trusted caller acts for."""
        return await self.client.call("session.reauthenticate", validated(SessionRequest, {"user_id": user_id}),
                                      SessionStatusResult, timeout=timeout)


class Compliance(Section):
    """`compliance.status` and `compliance.acknowledge`."""

    async def status(self, user_id: str, account_id: str, *, timeout: float | None = None) -> ComplianceStatus:
        """Regime, day trades, options level, disclosures and the halt switch for a user's account."""
        return await self.client.call(
            "compliance.status",
            validated(StatusRequest, {"user_id": user_id, "account_id": account_id}),
            ComplianceStatus,
            timeout=timeout,
        )

    async def acknowledge(
        self,
        user_id: str,
        disclosures: Sequence[str],
        *,
        environment: Literal["paper", "live"] | None = None,
        timeout: float | None = None,
    ) -> AcknowledgeResult:
        """Record that the user acknowledged these disclosures (their current versions)."""
        request = validated(
            AcknowledgeRequest, {"user_id": user_id, "disclosures": list(disclosures), "environment": environment}
        )
        return await self.client.call("compliance.acknowledge", request, AcknowledgeResult, timeout=timeout)


class Trading(Section):
    """`trading.halt` / `trading.resume`: the connection's switch for new opening orders."""

    async def halt(self, reason: str, changed_by: str | None = None, *, user_id: str | None = None,
                   timeout: float | None = None) -> HaltResult:
        """Halt opening orders on the connection; `user_id`: whom a trusted caller acts for."""
        return await self.client.call(
            "trading.halt",
            validated(HaltRequest, {"reason": reason, "changed_by": changed_by, "user_id": user_id}),
            HaltResult,
            timeout=timeout,
        )

    async def resume(self, reason: str, changed_by: str | None = None, *, user_id: str | None = None,
                     timeout: float | None = None) -> HaltResult:
        """Resume trading on the connection; `user_id`: whom a trusted caller acts for."""
        return await self.client.call(
            "trading.resume",
            validated(HaltRequest, {"reason": reason, "changed_by": changed_by, "user_id": user_id}),
            HaltResult,
            timeout=timeout,
        )


class Audit(Section):
    """`audit.query` / `audit.verify`, and `export()` over every page."""

    async def query(
        self,
        *,
        type_prefix: str | None = None,
        account_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_seq: int | None = None,
        conn: str | None = None,
        user_id: str | None = None,
        timeout: float | None = None,
    ) -> AuditQueryResult:
        """One page of stored events of the client's connection, newest first (pass `next_before_seq` as
        `before_seq` for the next); `user_id`, the user a trusted caller acts for, must own the connection."""
        request = validated(
            AuditQueryRequest,
            {
                "type_prefix": type_prefix,
                "account_id": account_id,
                "since": since,
                "until": until,
                "limit": limit,
                "before_seq": before_seq,
                "conn": conn,
                "user_id": user_id,
            },
        )
        return await self.client.call("audit.query", request, AuditQueryResult, timeout=timeout)

    async def verify(self, from_seq: int | None = None, *, timeout: float | None = None) -> AuditVerifyResult:
        """Walk the hash chain; `ok` is false when any row was changed, removed or reordered."""
        return await self.client.call(
            "audit.verify",
            validated(AuditVerifyRequest, {"from_seq": from_seq}),
            AuditVerifyResult,
            timeout=timeout or self.client.sync_timeout,
        )

    async def export(
        self, *, page_size: int = 1000, timeout: float | None = None, **filters: Any
    ) -> AsyncIterator[AuditEvent]:
        """Every stored event that matches `filters` (those of `query`), newest first, page by page."""
        before: int | None = None
        while True:
            page = await self.query(limit=page_size, before_seq=before, timeout=timeout, **filters)
            for event in page.events:
                yield event
            if page.next_before_seq is None or not page.events:
                return
            before = page.next_before_seq


class Contracts(Section):
    """`contracts.search` / `contracts.option_chain` (gateway-bridge)."""

    async def search(
        self,
        symbol: str,
        sec_type: Literal["STK", "IND", "BOND", "OPT", "FUT"] | None = None,
        *,
        name: bool = False,
        timeout: float | None = None,
    ) -> ContractSearchResult:
        request = validated(ContractSearchRequest, {"symbol": symbol, "sec_type": sec_type, "name": name})
        return await self.client.call("contracts.search", request, ContractSearchResult, timeout=timeout)

    async def option_chain(
        self, underlying_conid: int, month: str, *, exchange: str | None = None, timeout: float | None = None
    ) -> OptionChain:
        request = validated(
            OptionChainRequest, {"underlying_conid": underlying_conid, "month": month, "exchange": exchange}
        )
        return await self.client.call("contracts.option_chain", request, OptionChain, timeout=timeout)
