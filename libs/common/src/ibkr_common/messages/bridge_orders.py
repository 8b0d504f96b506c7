"""Order models of the gateway-bridge (`ibkr.<conn>.bridge.orders.*`). Owned by gateway-bridge."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from ibkr_common.messages.bridge_base import ACCOUNT_PATTERN, AccountRequest, BridgeRequest, OrderStatus
from ibkr_contract.types import PlainDecimal


class OrderSpec(BaseModel):
    """One order of a placement (IBKR fields are produced by the bridge)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    conid: int | None = Field(None, gt=0)
    conidex: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[0-9;/,@A-Z.-]+$")
    side: Literal["BUY", "SELL"]
    quantity: PlainDecimal = Field(gt=0)
    order_type: Literal["MKT", "LMT", "STP", "STP_LMT"]
    price: PlainDecimal | None = Field(None, gt=0, description="Limit price (LMT, STP_LMT) or stop price (STP).")
    aux_price: PlainDecimal | None = Field(None, gt=0, description="Stop price of a STP_LMT order.")
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


#: What `answer_by` means to the bridge.
ANSWER_BY = ("When the caller stops waiting (UTC): the bridge's order budget ends by then, and an order that "
             "waited so long in the bridge's queue that no budget is left is refused (RATE_LIMITED, nothing "
             "sent), so nothing goes out after the caller gave up.")


class PlaceOrderRequest(AccountRequest):
    """`bridge.orders.place` (only compliance may publish it). `orders[0].cOID` is required."""

    orders: list[OrderSpec] = Field(min_length=1, max_length=10)
    answer_by: AwareDatetime | None = Field(None, description=ANSWER_BY)

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

    submitted: IBKR took it (`order_id`), or refused its cOID as one seen in the last 24 hours, so it
    took it before (`evidence.duplicate_coid`; `order_id` when a lookup found it); confirmation_required:
    answer `confirmation` with orders.reply; rejected: IBKR refused (`message`); unknown: the answer
    was lost and no order with the cOID was found (`evidence`); never sent twice.
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
    answer_by: AwareDatetime | None = Field(None, description="As for bridge.orders.place.")


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
    amount: PlainDecimal | None = None
    commission: PlainDecimal | None = None
    total: PlainDecimal | None = None
    equity_change: PlainDecimal | None = None
    initial_margin_change: PlainDecimal | None = None
    initial_margin_after: PlainDecimal | None = None
    maintenance_margin_change: PlainDecimal | None = None
    maintenance_margin_after: PlainDecimal | None = None
    position_after: PlainDecimal | None = None
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
    quantity: PlainDecimal | None = None
    filled_quantity: PlainDecimal | None = None
    remaining_quantity: PlainDecimal | None = None
    price: PlainDecimal | None = None
    aux_price: PlainDecimal | None = None
    avg_price: PlainDecimal | None = None
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
    quantity: PlainDecimal | None = None
    filled_quantity: PlainDecimal | None = None
    limit_price: PlainDecimal | None = None
    stop_price: PlainDecimal | None = None
    avg_price: PlainDecimal | None = None
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


