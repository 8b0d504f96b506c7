"""Typed payloads of the events: one model per event type (or family), and the envelope typed by them.

The envelope's `payload` travels as a JSON object; `payload_model(event_type)` names the model that
describes it and `typed_payload(envelope)` reads it. Payload models accept fields added later (a
payload may grow, CONTRACT.md: keys are added, never renamed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from ibkr_contract.connections import ConnectionPayload
from ibkr_contract.envelope import EventEnvelope
from ibkr_contract.orders import Reason
from ibkr_contract.subjects import EVENT_TYPES
from ibkr_contract.sync import OrderView, PositionView, SyncProblem
from ibkr_contract.types import PlainDecimal


class Payload(BaseModel):
    """Base of the event payloads: fields added later are kept."""

    model_config = ConfigDict(extra="allow")


class SessionPayload(Payload):
    """`session.*`: the keeper's view when it happened (plus a few fields per kind, e.g. `login_at`, `detail`)."""

    status: str
    authenticated: bool
    connected: bool
    competing: bool
    in_maintenance: bool
    expires_at: datetime | None = None
    seconds_left: int | None = None
    reason: str | None = None
    login_at: datetime | None = Field(None, description="session.authenticated")
    expiry_basis: str | None = Field(None, description="session.authenticated")
    tickled_at: datetime | None = Field(None, description="session.tickled")
    detail: str | None = Field(None, description="session.gateway_down")


class PositionPrevious(Payload):
    quantity: PlainDecimal | None = None
    avg_cost: PlainDecimal | None = None
    avg_price: PlainDecimal | None = None


class PositionPayload(Payload):
    """`positions.opened|changed|closed`: the position now (quantity 0 when closed) and before (null when opened)."""

    position: PositionView
    previous: PositionPrevious | None = None


class OrderPayload(Payload):
    """`orders.status_changed|filled|cancelled|rejected`: the order now, its status before, and new fills."""

    order: OrderView
    previous_status: str | None = None
    new_fills: list[dict[str, Any]] = []


class OrderSubmittedPayload(Payload):
    """`orders.submitted`: compliance sent the order to IBKR."""

    client_order_id: str
    order_id: str | None = None
    order_status: str | None = None
    order: dict[str, Any] = Field(default_factory=dict, description="The order as sent (`OrderRequest` fields).")
    message: str | None = None


class OrderResolvedPayload(Payload):
    """`orders.resolved`: an uncertain send settled by its cOID at the gateway (`submitted`: found there;
    `not_sent`: proved absent, so the same client_order_id may be sent again)."""

    client_order_id: str
    outcome: Literal["submitted", "not_sent"]
    was: str = Field(description="The ledger status before the resolution (`unknown`, `pending`, ...).")
    order_id: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict, description="What the resolution rests on.")


class DecisionPayload(Payload):
    """`compliance.allowed|warned|blocked`: one per decision (checks and submissions)."""

    action: str = Field(examples=["submit", "check"])
    client_order_id: str
    decision: Literal["allow", "warn", "block"]
    reasons: list[Reason] = []
    regime: str | None = None
    latency_ms: PlainDecimal | None = None
    symbol: str | None = None


class HaltPayload(Payload):
    """`trading.halted|resumed`."""

    reason: str
    changed_by: str | None = None


class AccountFields(Payload):
    """The account summary as the sync read it (the fields of `AccountView` it has)."""

    account_id: str
    account_type: str | None = None
    currency: str | None = None
    cash: PlainDecimal | None = None
    net_liquidation: PlainDecimal | None = None
    equity_with_loan: PlainDecimal | None = None
    previous_day_equity: PlainDecimal | None = None
    buying_power: PlainDecimal | None = None
    available_funds: PlainDecimal | None = None
    excess_liquidity: PlainDecimal | None = None
    day_trades_remaining: int | None = None
    pdt_flag: bool | None = None
    options_level: int | None = None


class AccountPayload(Payload):
    """`account.updated`: the summary, and which fields changed (null for the first read)."""

    account: AccountFields
    changed: list[str] | None = None


class SyncProblemPayload(SyncProblem):
    """`sync.problem`: something a sync could not read or trust."""

    model_config = ConfigDict(extra="allow")


class SyncCompletedPayload(Payload):
    """`sync.completed`."""


class GatewayCallPayload(Payload):
    """`gateway.call`: one Client Portal call (the path template, never an account number)."""

    method: str
    path: str
    status: int | None = None
    outcome: str | None = None
    latency_ms: float | None = None
    queue_wait_ms: float | None = None
    retries: int = 0
    priority: str | None = None


_BY_AREA: dict[str, type[Payload]] = {
    "session": SessionPayload, "positions": PositionPayload, "compliance": DecisionPayload,
    "trading": HaltPayload, "account": AccountPayload, "gateway": GatewayCallPayload,
}
_BY_AREA_MODEL: dict[str, type[BaseModel]] = {"connection": ConnectionPayload}
_BY_TYPE: dict[str, type[BaseModel]] = {
    "orders.submitted": OrderSubmittedPayload, "orders.resolved": OrderResolvedPayload,
    "sync.problem": SyncProblemPayload,
    "sync.completed": SyncCompletedPayload,
}


def payload_model(event_type: str) -> type[BaseModel]:
    """The model of an event type's payload."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if event_type in _BY_TYPE:
        return _BY_TYPE[event_type]
    area = event_type.split(".", 1)[0]
    if area in _BY_AREA_MODEL:
        return _BY_AREA_MODEL[area]
    return _BY_AREA.get(area, OrderPayload)


def typed_payload(envelope: EventEnvelope) -> BaseModel:
    """The envelope's payload read as its type's model."""
    return payload_model(envelope.type).model_validate(envelope.payload)


P = TypeVar("P", bound=BaseModel)


class TypedEnvelope(EventEnvelope, Generic[P]):
    """An envelope whose payload is described by its type's model (used by the AsyncAPI documents)."""

    payload: P  # type: ignore[assignment]


def envelope_model(event_type: str) -> type[BaseModel]:
    """An envelope model for one event type: `type` fixed to it, `payload` its payload model."""
    model = payload_model(event_type)
    name = "".join(part.title() for part in event_type.replace("_", ".").split(".")) + "Event"
    fixed: Any = Literal[event_type]  # type: ignore[valid-type]
    return create_model(name, __base__=TypedEnvelope[model],  # type: ignore[valid-type]
                        type=(fixed, Field(description=f"Always `{event_type}`.")))
