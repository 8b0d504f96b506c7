"""The event envelope of CONTRACT.md: one JSON object per event, `Nats-Msg-Id` = `event_id`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, field_validator

from ibkr_contract.subjects import EVENT_TYPES
from ibkr_contract.types import jsonable

SCHEMA_VERSION = 1


class EventEnvelope(BaseModel):
    """One event as it travels on the `IBKR_EVENTS` stream and is stored by audit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Unique id; also Nats-Msg-Id.")
    type: str = Field(description="Event type, e.g. `orders.filled`.", examples=["session.tickled"])
    schema_version: int = Field(SCHEMA_VERSION, ge=1)
    conn: str = Field(pattern=r"^[a-z0-9-]{1,32}$", description="Connection id.")
    environment: Literal["paper", "live"]
    source: str = Field(min_length=1, description="The service that emitted the event.")
    occurred_at: AwareDatetime = Field(description="When it happened, RFC 3339 UTC.")
    account_id: str | None = None
    user_id: str | None = None
    correlation_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in EVENT_TYPES:
            raise ValueError(f"unknown event type {value!r}")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_serializer("payload", when_used="json")
    def _plain_payload(self, value: dict[str, Any]) -> dict[str, Any]:
        return jsonable(value)

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes of the envelope (Decimals as plain strings, times RFC 3339)."""
        return self.model_dump_json().encode()

    def canonical_json(self) -> str:
        """Sorted-key JSON of the envelope, stable across processes (used for hashing)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def new_event(
    event_type: str,
    *,
    conn: str,
    environment: Literal["paper", "live"],
    source: str,
    occurred_at: datetime,
    payload: dict[str, Any] | None = None,
    account_id: str | None = None,
    user_id: str | None = None,
    correlation_id: str | None = None,
) -> EventEnvelope:
    """Build an envelope; `payload` is made JSON-safe (Decimal to a plain string, datetime to ISO)."""
    return EventEnvelope(
        type=event_type,
        conn=conn,
        environment=environment,
        source=source,
        occurred_at=occurred_at,
        payload=jsonable(payload or {}),
        account_id=account_id,
        user_id=user_id,
        correlation_id=correlation_id,
    )
