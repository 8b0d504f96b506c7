"""Request and reply models of the gateway-bridge (`ibkr.<conn>.bridge.<op>`). Owned by gateway-bridge.

Every request accepts an optional `priority` ("order" | "session" | "account" | "sync") that
places it in the bridge's rate-limit queue; the default depends on the operation. Money,
prices and quantities are Decimal (strings on the wire); times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from ibkr_common.messages.bridge_base import (
    ACCOUNT_PATTERN,
    AccountId,
    AccountRequest,
    BridgeRequest,
    Empty,
    OrderStatus,
    Priority,
)
from ibkr_common.messages.bridge_orders import (
    CancelRequest,
    CancelResult,
    Confirmation,
    LiveOrder,
    LiveOrders,
    LiveOrdersRequest,
    LookupRequest,
    LookupResult,
    ModifyRequest,
    OrderSpec,
    OrderStatusRequest,
    OrderStatusResult,
    PlacedOrder,
    PlaceOrderRequest,
    PlaceOrderResult,
    ReplyRequest,
    SuppressRequest,
    SuppressResult,
    WhatIfRequest,
    WhatIfResult,
)

__all__ = [
    "ACCOUNT_PATTERN", "AccountId", "AccountRequest", "AccountSummary", "AccountsList", "BridgeRequest",
    "CancelRequest", "CancelResult", "Confirmation", "Empty", "InvalidateResult", "Ledger", "LedgerEntry",
    "LiveOrder", "LiveOrders", "LiveOrdersRequest", "LogoutResult", "LookupRequest", "LookupResult",
    "ModifyRequest", "OrderSpec", "OrderStatus", "OrderStatusRequest", "OrderStatusResult", "PlaceOrderRequest",
    "PlaceOrderResult", "PlacedOrder", "Pnl", "PnlRow", "PortfolioAccount", "PortfolioAccounts", "Position",
    "PositionRequest", "Positions", "PositionsPageRequest", "Priority", "ReauthenticateResult", "ReplyRequest",
    "SessionInitRequest", "SessionStatus", "Snapshot", "SnapshotRequest", "Snapshots", "SuppressRequest",
    "SuppressResult", "TickleResult", "Trade", "Trades", "TradesRequest", "ValidateResult", "WhatIfRequest",
    "WhatIfResult",
]
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
    login_at: datetime | None = Field(None, description="When the user logged in (IBKR's AUTH_TIME).")


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
