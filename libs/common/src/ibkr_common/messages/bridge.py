"""Request and reply models of the gateway-bridge (`ibkr.<conn>.bridge.<op>`). Owned by gateway-bridge.

Every request accepts an optional `priority` ("order" | "session" | "account" | "sync") that
places it in the bridge's rate-limit queue; the default depends on the operation. Money,
prices and quantities are Decimal (strings on the wire); times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

Priority = Literal["order", "session", "account", "sync"]
AccountId = str
ACCOUNT_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"

#: Normalised order status (IBKR's strings are mapped by the bridge).
OrderStatus = Literal[
    "pending_submit", "pre_submitted", "submitted", "filled", "pending_cancel", "cancelled",
    "inactive", "warn_state", "failed", "unknown",
]


class BridgeRequest(BaseModel):
    """Base of every bridge request: unknown fields are refused, `priority` is optional."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    priority: Priority | None = Field(None, description="Queue priority; default by operation.")


class Empty(BridgeRequest):
    """A request without parameters (`{}`)."""


class AccountRequest(BridgeRequest):
    account_id: str = Field(pattern=ACCOUNT_PATTERN)


# ---- session ---------------------------------------------------------------------------------


class SessionInitRequest(BridgeRequest):
    compete: bool = Field(True, description="Disconnect other brokerage sessions of the username.")


class SessionStatus(BaseModel):
    """Brokerage session state (`/iserver/auth/status`, also the answer of ssodh/init)."""

    authenticated: bool
    connected: bool
    competing: bool
    message: str | None = None
    fail: str | None = None
    server_name: str | None = None
    server_version: str | None = None


class TickleResult(BaseModel):
    """`/tickle`, without the session token or user id."""

    authenticated: bool
    connected: bool
    competing: bool
    sso_expires_ms: int | None = None
    expires_at: datetime | None = None
    no_session: bool = False


class ValidateResult(BaseModel):
    """`/sso/validate`, without the username."""

    valid: bool
    expires_ms: int | None = None
    expires_at: datetime | None = None
    environment: Literal["live", "paper"] | None = None


class LogoutResult(BaseModel):
    logged_out: bool


class ReauthenticateResult(BaseModel):
    message: str | None = None


# ---- accounts --------------------------------------------------------------------------------


class AccountsList(BaseModel):
    """`/iserver/accounts` (also the bridge's pre-flight)."""

    accounts: list[str]
    selected_account: str | None = None
    aliases: dict[str, str] = {}
    is_paper: bool | None = None


class PortfolioAccount(BaseModel):
    account_id: str
    title: str | None = None
    currency: str | None = None
    type: str | None = None
    trading_type: str | None = None
    customer_type: str | None = None
    clearing_status: str | None = None
    brokerage_access: bool | None = None


class PortfolioAccounts(BaseModel):
    accounts: list[PortfolioAccount]


class AccountSummary(BaseModel):
    """`/portfolio/{accountId}/summary`, the common keys typed, every numeric key in `values`."""

    account_id: str
    currency: str | None = None
    account_type: str | None = None
    net_liquidation: Decimal | None = None
    equity_with_loan: Decimal | None = None
    buying_power: Decimal | None = None
    available_funds: Decimal | None = None
    excess_liquidity: Decimal | None = None
    total_cash: Decimal | None = None
    settled_cash: Decimal | None = None
    gross_position_value: Decimal | None = None
    init_margin: Decimal | None = None
    maint_margin: Decimal | None = None
    cushion: Decimal | None = None
    day_trades_remaining: int | None = Field(None, description="-1 means unlimited.")
    values: dict[str, Decimal] = {}
    texts: dict[str, str] = Field({}, description="Keys whose value is text (e.g. a day-trading status).")


class LedgerEntry(BaseModel):
    currency: str
    cash_balance: Decimal | None = None
    settled_cash: Decimal | None = None
    net_liquidation: Decimal | None = None
    stock_market_value: Decimal | None = None
    option_market_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None
    exchange_rate: Decimal | None = None


class Ledger(BaseModel):
    account_id: str
    entries: list[LedgerEntry]


class PnlRow(BaseModel):
    key: str
    account_id: str
    daily_pnl: Decimal | None = None
    net_liquidation: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    excess_liquidity: Decimal | None = None
    market_value: Decimal | None = None


class Pnl(BaseModel):
    rows: list[PnlRow]
    complete: bool = Field(description="False when IBKR answered its first-call `{\"upnl\": {}}`.")


# ---- positions -------------------------------------------------------------------------------


class PositionsPageRequest(AccountRequest):
    page: int = Field(0, ge=0, le=1000)


class PositionRequest(AccountRequest):
    conid: int = Field(gt=0)


class Position(BaseModel):
    account_id: str
    conid: int
    symbol: str | None = None
    description: str | None = None
    sec_type: str | None = None
    quantity: Decimal
    avg_cost: Decimal | None = None
    avg_price: Decimal | None = None
    market_price: Decimal | None = None
    market_value: Decimal | None = None
    currency: str | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None
    expiry: str | None = None
    right: Literal["C", "P"] | None = None
    strike: Decimal | None = None
    multiplier: Decimal | None = None
    underlying_conid: int | None = None
    underlying_symbol: str | None = None


class Positions(BaseModel):
    account_id: str
    positions: list[Position]
    page: int | None = None
    has_more: bool = False
    received: int = Field(0, description="Entries IBKR returned, readable or not.")
    unreadable: int = Field(
        0, description="Entries without a readable conid or quantity: the read is not complete when > 0."
    )


class InvalidateResult(BaseModel):
    invalidated: bool


# ---- orders ----------------------------------------------------------------------------------


class OrderSpec(BaseModel):
    """One order of a placement (IBKR fields are produced by the bridge)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    conid: int | None = Field(None, gt=0)
    conidex: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[0-9;/,@A-Z.-]+$")
    side: Literal["BUY", "SELL"]
    quantity: Decimal = Field(gt=0)
    order_type: Literal["MKT", "LMT", "STP", "STP_LMT"]
    price: Decimal | None = Field(None, gt=0, description="Limit price (LMT, STP_LMT) or stop price (STP).")
    aux_price: Decimal | None = Field(None, gt=0, description="Stop price of a STP_LMT order.")
    tif: Literal["DAY", "GTC", "IOC", "OPG"] = "DAY"
    coid: str | None = Field(
        None, validation_alias=AliasChoices("cOID", "coid", "client_order_id"),
        pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Client order id (cOID): the idempotency key.",
    )
    parent_id: str | None = Field(None, validation_alias=AliasChoices("parentId", "parent_id"))
    outside_rth: bool = False
    listing_exchange: str | None = Field(None, pattern=r"^[A-Z0-9.]{1,16}$")
    sec_type: str | None = Field(None, pattern=r"^[0-9]+:[A-Z]{2,5}$", description="IBKR's `conid:TYPE`.")
    referrer: str | None = Field(None, max_length=64)
    is_single_group: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OrderSpec:
        if (self.conid is None) == (self.conidex is None):
            raise ValueError("exactly one of conid and conidex is required")
        if self.order_type in ("LMT", "STP", "STP_LMT") and self.price is None:
            raise ValueError(f"price is required for {self.order_type}")
        if self.order_type == "STP_LMT" and self.aux_price is None:
            raise ValueError("aux_price (the stop price) is required for STP_LMT")
        return self


class PlaceOrderRequest(AccountRequest):
    """`bridge.orders.place` (only compliance may publish it). `orders[0].cOID` is required."""

    orders: list[OrderSpec] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _parent_coid(self) -> PlaceOrderRequest:
        if not self.orders[0].coid:
            raise ValueError("orders.0.cOID is required (the idempotency key)")
        return self


class Confirmation(BaseModel):
    """IBKR's question, passed through untouched; answer it with `bridge.orders.reply`."""

    reply_id: str
    messages: list[str]
    message_ids: list[str] = []
    options: list[str] = []


class PlacedOrder(BaseModel):
    order_id: str | None = None
    order_status: OrderStatus | None = None
    ibkr_status: str | None = None
    text: str | None = None


class PlaceOrderResult(BaseModel):
    """Outcome of a placement, reply or modify.

    submitted: IBKR took it (`order_id`); confirmation_required: answer `confirmation` with
    orders.reply; rejected: IBKR refused (`message`); unknown: the answer was lost and no order
    with the cOID was found (`evidence`); never sent twice.
    """

    status: Literal["submitted", "confirmation_required", "rejected", "unknown"]
    client_order_id: str | None = None
    order_id: str | None = None
    order_status: OrderStatus | None = None
    confirmation: Confirmation | None = None
    message: str | None = None
    orders: list[PlacedOrder] = []
    evidence: dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None


class ReplyRequest(BridgeRequest):
    """`bridge.orders.reply`: answer IBKR's question. Give account_id + client_order_id so a lost
    answer can be resolved by cOID."""

    reply_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    confirmed: bool
    account_id: str | None = Field(None, pattern=ACCOUNT_PATTERN)
    client_order_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")


class CancelRequest(AccountRequest):
    order_id: str = Field(pattern=r"^(-1|[0-9]{1,20})$", description="IBKR order id; -1 cancels all.")


class CancelResult(BaseModel):
    order_id: str
    message: str | None = None
    conid: int | None = None
    status: Literal["cancel_requested"] = "cancel_requested"


class ModifyRequest(AccountRequest):
    """`bridge.orders.modify`: the full order with the changed values (IBKR wants every field)."""

    order_id: str = Field(pattern=r"^[0-9]{1,20}$")
    order: OrderSpec


class WhatIfRequest(AccountRequest):
    orders: list[OrderSpec] = Field(min_length=1, max_length=10)


class WhatIfResult(BaseModel):
    amount: Decimal | None = None
    commission: Decimal | None = None
    total: Decimal | None = None
    equity_change: Decimal | None = None
    initial_margin_change: Decimal | None = None
    initial_margin_after: Decimal | None = None
    maintenance_margin_change: Decimal | None = None
    maintenance_margin_after: Decimal | None = None
    position_after: Decimal | None = None
    warning: str | None = None
    error: str | None = None


class LiveOrdersRequest(BridgeRequest):
    """`bridge.orders.live`. Filtering happens in the bridge (an IBKR filter would stop updates)."""

    account_id: str | None = Field(None, pattern=ACCOUNT_PATTERN)
    status: list[OrderStatus] | None = None
    force: bool = Field(False, description="Clear IBKR's cache first (costs one extra call, >= 5 s).")
    max_age_s: float = Field(5.0, ge=0, le=300, description="A cached answer this young is good enough.")


class LiveOrder(BaseModel):
    account_id: str | None = None
    order_id: str
    client_order_id: str | None = None
    conid: int | None = None
    symbol: str | None = None
    sec_type: str | None = None
    side: Literal["BUY", "SELL"] | None = None
    order_type: str | None = None
    status: OrderStatus
    ibkr_status: str | None = None
    quantity: Decimal | None = None
    filled_quantity: Decimal | None = None
    remaining_quantity: Decimal | None = None
    price: Decimal | None = None
    aux_price: Decimal | None = None
    avg_price: Decimal | None = None
    tif: str | None = None
    description: str | None = None
    last_execution_at: datetime | None = None


class LiveOrders(BaseModel):
    orders: list[LiveOrder]
    as_of: datetime
    complete: bool = Field(description="False right after a force/first call, when IBKR may still be filling it.")


class OrderStatusRequest(BridgeRequest):
    order_id: str = Field(pattern=r"^[0-9]{1,20}$")


class OrderStatusResult(BaseModel):
    order_id: str
    account_id: str | None = None
    conid: int | None = None
    symbol: str | None = None
    side: Literal["BUY", "SELL"] | None = None
    order_type: str | None = None
    status: OrderStatus
    ibkr_status: str | None = None
    quantity: Decimal | None = None
    filled_quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    avg_price: Decimal | None = None
    tif: str | None = None
    description: str | None = None


class LookupRequest(AccountRequest):
    """`bridge.orders.lookup`: find an order by its cOID in live orders, then in trades."""

    client_order_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")


class LookupResult(BaseModel):
    found: bool
    client_order_id: str
    order_id: str | None = None
    status: OrderStatus | None = None
    source: Literal["live_orders", "trades"] | None = None
    evidence: dict[str, Any] = {}


class SuppressRequest(BridgeRequest):
    message_ids: list[str] = Field(min_length=1, max_length=51)


class SuppressResult(BaseModel):
    status: str


# ---- trades ----------------------------------------------------------------------------------


class TradesRequest(BridgeRequest):
    account_id: str | None = Field(None, pattern=ACCOUNT_PATTERN)
    days: int = Field(1, ge=1, le=7)


class Trade(BaseModel):
    execution_id: str
    account_id: str | None = None
    order_id: str | None = None
    client_order_id: str | None = None
    conid: int | None = None
    symbol: str | None = None
    sec_type: str | None = None
    side: Literal["BUY", "SELL"] | None = None
    quantity: Decimal
    price: Decimal
    commission: Decimal | None = None
    net_amount: Decimal | None = None
    exchange: str | None = None
    executed_at: datetime | None = None


class Trades(BaseModel):
    trades: list[Trade]


# ---- market data -----------------------------------------------------------------------------


class SnapshotRequest(BridgeRequest):
    conids: list[int] = Field(min_length=1, max_length=100)
    fields: list[str] | None = Field(None, max_length=50, description="Field ids; default: quote fields.")


class Snapshot(BaseModel):
    conid: int
    last: Decimal | None = None
    last_is_close: bool = Field(False, description="IBKR prefixed the last price with C (previous close).")
    halted: bool = False
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    last_size: Decimal | None = None
    volume: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    open: Decimal | None = None
    close: Decimal | None = None
    prior_close: Decimal | None = None
    change: Decimal | None = None
    change_pct: Decimal | None = None
    mark: Decimal | None = None
    availability: str | None = None
    updated_at: datetime | None = None
    fields: dict[str, str] = Field({}, description="Every field IBKR sent, by name (raw strings).")


class Snapshots(BaseModel):
    snapshots: list[Snapshot]
    complete: bool = Field(description="False when some conid still has only its pre-flight answer.")
