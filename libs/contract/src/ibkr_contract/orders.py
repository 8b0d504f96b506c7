"""Order requests and results of CONTRACT.md (served by compliance; built by sync-worker's positions.close)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, model_validator

from ibkr_contract.types import PlainDecimal, jsonable

Severity = Literal["allow", "warn", "block"]
TimeInForce = Literal["DAY", "GTC", "IOC"]
OrderType = Literal["MKT", "LMT", "STP", "STP_LMT"]
Side = Literal["BUY", "SELL"]

ClientOrderId = Field(
    min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$",
    description="Idempotency key, sent to IBKR as cOID.", examples=["app-2026-11-24-0001"],
)


class Instrument(BaseModel):
    """A contract: by IBKR conid, or an option/stock by symbol and terms."""

    model_config = ConfigDict(extra="forbid")

    conid: int | None = Field(None, gt=0)
    symbol: str | None = Field(None, min_length=1, max_length=32)
    sec_type: Literal["STK", "OPT"] | None = None
    expiry: date | None = None
    strike: PlainDecimal | None = Field(None, gt=0)
    right: Literal["C", "P"] | None = None

    @model_validator(mode="after")
    def _identified(self) -> Instrument:
        if self.conid is None:
            if not self.symbol or not self.sec_type:
                raise ValueError("give conid, or symbol and sec_type")
            if self.sec_type == "OPT" and (self.expiry is None or self.strike is None or self.right is None):
                raise ValueError("an option needs expiry, strike and right")
        return self


class Leg(BaseModel):
    """One leg of a multi-leg option order."""

    model_config = ConfigDict(extra="forbid")

    instrument: Instrument
    side: Side
    ratio: int = Field(1, ge=1, le=100)


class OrderRequest(BaseModel):
    """`orders.submit` / `orders.check` payload."""

    model_config = ConfigDict(extra="forbid")

    client_order_id: str = ClientOrderId
    user_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    environment: Literal["paper", "live"]
    instrument: Instrument | None = None
    legs: list[Leg] | None = Field(None, min_length=2, max_length=4)
    side: Side
    quantity: PlainDecimal = Field(gt=0, max_digits=18, decimal_places=8)
    order_type: OrderType
    limit_price: PlainDecimal | None = Field(None, gt=0)
    stop_price: PlainDecimal | None = Field(None, gt=0)
    tif: TimeInForce = "DAY"
    position_effect: Literal["open", "close", "auto"] = "auto"
    at: AwareDatetime | None = Field(None, description="orders.check only: evaluate as of this time.")

    @model_validator(mode="after")
    def _consistent(self) -> OrderRequest:
        if (self.instrument is None) == (self.legs is None):
            raise ValueError("give either instrument or legs")
        if self.order_type in ("LMT", "STP_LMT") and self.limit_price is None:
            raise ValueError("limit_price is required for LMT and STP_LMT")
        if self.order_type in ("STP", "STP_LMT") and self.stop_price is None:
            raise ValueError("stop_price is required for STP and STP_LMT")
        return self


class Reason(BaseModel):
    """One rule that fired, and how much it weighs: `block` stops the order, `warn` lets it through with a
    warning, `allow` is information."""

    code: str
    message: str = ""
    severity: Severity = Field("allow", description="allow (information), warn or block.")


class Confirmation(BaseModel):
    """IBKR's question, passed through untouched."""

    reply_id: str
    messages: list[str] = []
    message_ids: list[str] = []


class Decision(BaseModel):
    """What compliance decided, with every reason code that fired."""

    client_order_id: str
    decision: Severity
    reasons: list[Reason] = []
    regime: Literal["legacy_pdt", "intraday_margin"] | None = None
    computed: dict[str, Any] = {}

    @field_serializer("computed", when_used="json")
    def _plain_computed(self, value: dict[str, Any]) -> dict[str, Any]:
        return jsonable(value)

    def blocking(self) -> list[Reason]:
        """The reasons that block the order."""
        return [r for r in self.reasons if r.severity == "block"]


class OrderResult(Decision):
    """`orders.submit` / `orders.confirm` result."""

    status: str
    order_id: str | None = None
    confirmation: Confirmation | None = None
    message: str | None = None


class ConfirmRequest(BaseModel):
    """`orders.confirm` payload: the answer to IBKR's question."""

    model_config = ConfigDict(extra="forbid")

    client_order_id: str = ClientOrderId
    reply_id: str = Field(min_length=1, max_length=64)
    confirmed: bool
    answered_by: str | None = Field(None, max_length=64)
    user_id: str | None = Field(None, max_length=64, description="The user the caller acts for; checked against "
                                "the connection's owner (FORBIDDEN).")


class CancelRequest(BaseModel):
    """`orders.cancel` payload."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=32)
    order_id: str | None = Field(None, min_length=1, max_length=32)
    client_order_id: str | None = Field(None, min_length=1, max_length=64)
    user_id: str | None = Field(None, max_length=64, description="The user the caller acts for; checked against "
                                "the connection's owner (FORBIDDEN).")

    @model_validator(mode="after")
    def _which(self) -> CancelRequest:
        if self.order_id is None and self.client_order_id is None:
            raise ValueError("give order_id or client_order_id")
        return self


class ModifyRequest(BaseModel):
    """`orders.modify` payload."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=32)
    order_id: str = Field(min_length=1, max_length=32)
    quantity: PlainDecimal | None = Field(None, gt=0)
    limit_price: PlainDecimal | None = Field(None, gt=0)
    stop_price: PlainDecimal | None = Field(None, gt=0)
    tif: TimeInForce | None = None
    user_id: str | None = Field(None, max_length=64)


class CancelResult(BaseModel):
    """`orders.cancel` result: the order and the status IBKR reported for it."""

    order_id: str | None = None
    status: str
    message: str | None = None
