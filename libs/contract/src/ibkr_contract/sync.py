"""Request and reply models of the sync-worker's subjects. Served by the sync-worker.

`positions.get`, `orders.get`, `account.get` read the database (with `synced_at`, so callers can
refuse stale data); `positions.get` and `orders.get` answer one page at a time (`ibkr_contract.paging`:
`cursor`, `page_size`, `next_cursor`); `sync.trigger` answers once the sync it asked for has finished;
`positions.close` builds a closing OrderRequest and submits it through `orders.submit`;
`positions.exercise` answers NOT_SUPPORTED. Money and quantities are Decimal (plain decimal strings on the wire).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from ibkr_contract.orders import OrderResult
from ibkr_contract.paging import PageRequest
from ibkr_contract.types import PlainDecimal, jsonable

ACCOUNT_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

#: Normalised order statuses (the bridge's), plus `open`: every status that can still change.
OrderStatusFilter = Literal[
    "pending_submit", "pre_submitted", "submitted", "filled", "pending_cancel", "cancelled",
    "inactive", "warn_state", "failed", "unknown", "open",
]
OPEN_STATUSES = frozenset({"pending_submit", "pre_submitted", "submitted", "pending_cancel", "warn_state", "unknown"})


class SyncRequest(BaseModel):
    """Base of the sync-worker's requests: unknown fields are refused.

    `user_id`, when given, is the user a trusted caller acts for: it must own the connection (FORBIDDEN
    otherwise; for the bootstrap connection only with IBKR_ENFORCE_OWNERSHIP=true)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(None, min_length=1, max_length=64,
                                description="The user the caller acts for; checked against the connection's owner.")


class AccountScoped(SyncRequest):
    account_id: str = Field(pattern=ACCOUNT_PATTERN, examples=["DU1234567"])


class PositionsGetRequest(AccountScoped, PageRequest):
    """`ibkr.<conn>.positions.get`: one page of positions, by symbol then conid (no symbol sorts first)."""

    cursor_kind: ClassVar[str] = "positions"
    cursor_shape: ClassVar[tuple[type, ...]] = (str, int)


class AccountGetRequest(AccountScoped):
    """`ibkr.<conn>.account.get`."""


class OrdersGetRequest(AccountScoped, PageRequest):
    """`ibkr.<conn>.orders.get`: one page of orders, newest first (in the order the store first saw them,
    which never changes as orders do); `status` is one status or a list; `open` means not final yet."""

    cursor_kind: ClassVar[str] = "orders"
    cursor_shape: ClassVar[tuple[type, ...]] = (int,)

    status: OrderStatusFilter | list[OrderStatusFilter] | None = None

    def statuses(self) -> set[str] | None:
        """The statuses asked for, with `open` expanded; None for all."""
        if self.status is None:
            return None
        wanted: set[str] = {self.status} if isinstance(self.status, str) else set(self.status)
        if "open" in wanted:
            wanted = (wanted - {"open"}) | OPEN_STATUSES
        return wanted


class SyncTriggerRequest(SyncRequest):
    """`ibkr.<conn>.sync.trigger`: one account, or every account when omitted."""

    account_id: str | None = Field(None, pattern=ACCOUNT_PATTERN)


class PositionsCloseRequest(AccountScoped):
    """`ibkr.<conn>.positions.close`: close (part of) a position through compliance's `orders.submit`."""

    conid: int = Field(gt=0)
    user_id: str = Field(min_length=1, max_length=64,  # type: ignore[assignment]
                         description="The user the order is for; checked against the connection's owner.")
    client_order_id: str | None = Field(None, pattern=CLIENT_ORDER_ID_PATTERN)
    order_type: Literal["MKT", "LMT", "STP", "STP_LMT"] = "MKT"
    limit_price: PlainDecimal | None = Field(None, gt=0)
    stop_price: PlainDecimal | None = Field(None, gt=0)
    quantity: PlainDecimal | None = Field(None, gt=0, description="Default: the whole position.")
    tif: Literal["DAY", "GTC", "IOC"] = "DAY"

    @model_validator(mode="after")
    def _prices(self) -> PositionsCloseRequest:
        if self.order_type in ("LMT", "STP_LMT") and self.limit_price is None:
            raise ValueError(f"limit_price is required for {self.order_type}")
        if self.order_type in ("STP", "STP_LMT") and self.stop_price is None:
            raise ValueError(f"stop_price is required for {self.order_type}")
        return self


class PositionsExerciseRequest(AccountScoped):
    """`ibkr.<conn>.positions.exercise` (answers NOT_SUPPORTED)."""

    model_config = ConfigDict(extra="allow")

    conid: int | None = Field(None, gt=0)


class PositionView(BaseModel):
    """One position as stored by the last successful sync."""

    account_id: str
    conid: int
    symbol: str | None = None
    description: str | None = None
    sec_type: str | None = None
    currency: str | None = None
    quantity: PlainDecimal
    avg_cost: PlainDecimal | None = None
    avg_price: PlainDecimal | None = None
    market_price: PlainDecimal | None = None
    market_value: PlainDecimal | None = None
    unrealized_pnl: PlainDecimal | None = None
    realized_pnl: PlainDecimal | None = None
    expiry: date | None = None
    strike: PlainDecimal | None = None
    right: Literal["C", "P"] | None = None
    multiplier: PlainDecimal | None = None
    underlying_conid: int | None = None
    underlying_symbol: str | None = None
    opened_at: datetime | None = None
    updated_at: datetime | None = None


class PositionsResult(BaseModel):
    account_id: str
    positions: list[PositionView]
    synced_at: datetime | None = Field(description="End of the last complete read of every page.")
    next_cursor: str | None = Field(None, description="The `cursor` of the next page; null on the last page.")


class OrderView(BaseModel):
    """One order: live orders and recent trades, with its status history and fills."""

    account_id: str
    order_id: str
    client_order_id: str | None = None
    conid: int | None = None
    symbol: str | None = None
    sec_type: str | None = None
    side: str | None = None
    order_type: str | None = None
    quantity: PlainDecimal | None = None
    filled_quantity: PlainDecimal | None = None
    remaining_quantity: PlainDecimal | None = None
    limit_price: PlainDecimal | None = None
    stop_price: PlainDecimal | None = None
    avg_fill_price: PlainDecimal | None = None
    tif: str | None = None
    status: str
    status_history: list[dict[str, Any]] = Field(
        [], description="Each status the order had: `{status, at, ...}`, oldest first.")
    fills: list[dict[str, Any]] = []
    origin: str | None = None
    submitted_at: datetime | None = None
    last_execution_at: datetime | None = None
    updated_at: datetime | None = None


    @field_serializer("status_history", "fills", when_used="json")
    def _plain(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return jsonable(value)


class OrdersResult(BaseModel):
    account_id: str
    orders: list[OrderView]
    synced_at: datetime | None = None
    next_cursor: str | None = Field(None, description="The `cursor` of the next page; null on the last page.")


class AccountView(BaseModel):
    """The account summary of the last successful sync (`account.get`)."""

    account_id: str
    account_type: str | None = None
    currency: str | None = None
    net_liquidation: PlainDecimal | None = None
    equity_with_loan: PlainDecimal | None = None
    previous_day_equity: PlainDecimal | None = None
    cash: PlainDecimal | None = None
    buying_power: PlainDecimal | None = None
    available_funds: PlainDecimal | None = None
    excess_liquidity: PlainDecimal | None = None
    day_trades_remaining: int | None = Field(None, description="-1 means unlimited.")
    day_trades_remaining_t1: int | None = None
    day_trades_remaining_t2: int | None = None
    day_trades_remaining_t3: int | None = None
    day_trades_remaining_t4: int | None = None
    pdt_flag: bool | None = None
    options_level: int | None = None
    settled_cash: PlainDecimal | None = Field(None, description="Cash settled (as of the last stored summary).")
    maintenance_margin: PlainDecimal | None = Field(None, description="Maintenance margin requirement (same).")
    synced_at: datetime
    updated_at: datetime | None = None


class SyncProblem(BaseModel):
    """Something a sync could not read or trust (also published as `sync.problem`)."""

    kind: str = Field(examples=["positions_page_failed", "account_missing", "pnl_mismatch"])
    account_id: str | None = None
    message: str
    details: dict[str, Any] = {}

    @field_serializer("details", when_used="json")
    def _plain(self, value: dict[str, Any]) -> dict[str, Any]:
        return jsonable(value)


class AccountSyncSummary(BaseModel):
    account_id: str
    positions: int
    orders: int
    opened: int = 0
    changed: int = 0
    closed: int = 0
    order_events: int = 0
    account_updated: bool = False
    rows_written: int = 0
    complete: bool = True


class SyncTriggerResult(BaseModel):
    """Answer of `sync.trigger`: counts after the sync; `problems` lists what could not be read."""

    synced_at: datetime
    positions: int = Field(description="Positions held after the sync, over the accounts synced.")
    orders: int = Field(description="Orders seen by the sync (live orders and recent trades).")
    accounts: list[AccountSyncSummary] = []
    events: int = 0
    rows_written: int = 0
    problems: list[SyncProblem] = []


class ClosePositionResult(OrderResult):
    """`positions.close` result: the closing order's `OrderResult`, with the request that was submitted."""

    order_request: dict[str, Any] = {}
