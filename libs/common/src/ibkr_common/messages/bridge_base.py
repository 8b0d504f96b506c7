"""Base of the gateway-bridge request models: priorities, account ids, order statuses."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


