"""Request and reply models of the gateway-bridge (`ibkr.<conn>.bridge.<op>`). Owned by gateway-bridge.

Every request accepts an optional `priority` ("order" | "session" | "account" | "sync") that
places it in the bridge's rate-limit queue; the default depends on the operation. Money,
prices and quantities are Decimal (strings on the wire); times are UTC.
"""

from __future__ import annotations

from datetime import datetime
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
from ibkr_contract.types import PlainDecimal

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
    net_liquidation: PlainDecimal | None = None
    equity_with_loan: PlainDecimal | None = None
    buying_power: PlainDecimal | None = None
    available_funds: PlainDecimal | None = None
    excess_liquidity: PlainDecimal | None = None
    total_cash: PlainDecimal | None = None
    settled_cash: PlainDecimal | None = None
    gross_position_value: PlainDecimal | None = None
    init_margin: PlainDecimal | None = None
    maint_margin: PlainDecimal | None = None
    cushion: PlainDecimal | None = None
    day_trades_remaining: int | None = Field(None, description="-1 means unlimited.")
    values: dict[str, PlainDecimal] = {}
    texts: dict[str, str] = Field({}, description="Keys whose value is text (e.g. a day-trading status).")


class LedgerEntry(BaseModel):
    currency: str
    cash_balance: PlainDecimal | None = None
    settled_cash: PlainDecimal | None = None
    net_liquidation: PlainDecimal | None = None
    stock_market_value: PlainDecimal | None = None
    option_market_value: PlainDecimal | None = None
    unrealized_pnl: PlainDecimal | None = None
    realized_pnl: PlainDecimal | None = None
    exchange_rate: PlainDecimal | None = None


class Ledger(BaseModel):
    account_id: str
    entries: list[LedgerEntry]


class PnlRow(BaseModel):
    key: str
    account_id: str
    daily_pnl: PlainDecimal | None = None
    net_liquidation: PlainDecimal | None = None
    unrealized_pnl: PlainDecimal | None = None
    excess_liquidity: PlainDecimal | None = None
    market_value: PlainDecimal | None = None


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
    quantity: PlainDecimal
    avg_cost: PlainDecimal | None = None
    avg_price: PlainDecimal | None = None
    market_price: PlainDecimal | None = None
    market_value: PlainDecimal | None = None
    currency: str | None = None
    unrealized_pnl: PlainDecimal | None = None
    realized_pnl: PlainDecimal | None = None
    expiry: str | None = None
    right: Literal["C", "P"] | None = None
    strike: PlainDecimal | None = None
    multiplier: PlainDecimal | None = None
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
    quantity: PlainDecimal
    price: PlainDecimal
    commission: PlainDecimal | None = None
    net_amount: PlainDecimal | None = None
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
    last: PlainDecimal | None = None
    last_is_close: bool = Field(False, description="IBKR prefixed the last price with C (previous close).")
    halted: bool = False
    bid: PlainDecimal | None = None
    ask: PlainDecimal | None = None
    bid_size: PlainDecimal | None = None
    ask_size: PlainDecimal | None = None
    last_size: PlainDecimal | None = None
    volume: PlainDecimal | None = None
    high: PlainDecimal | None = None
    low: PlainDecimal | None = None
    open: PlainDecimal | None = None
    close: PlainDecimal | None = None
    prior_close: PlainDecimal | None = None
    change: PlainDecimal | None = None
    change_pct: PlainDecimal | None = None
    mark: PlainDecimal | None = None
    availability: str | None = None
    updated_at: datetime | None = None
    fields: dict[str, str] = Field({}, description="Every field IBKR sent, by name (raw strings).")


class Snapshots(BaseModel):
    snapshots: list[Snapshot]
    complete: bool = Field(description="False when some conid still has only its pre-flight answer.")
