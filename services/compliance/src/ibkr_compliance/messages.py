"""Payloads of compliance's own subjects not covered by ibkr_common.messages.orders.

(`compliance.acknowledge`, `compliance.status`, `trading.halt`, `trading.resume`; candidates for
libs/common once other services need them.)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AcknowledgeRequest(BaseModel):
    """`compliance.acknowledge`: the user acknowledges disclosures (in the connection's environment)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)
    disclosures: list[str] = Field(min_length=1, max_length=20, examples=[["options_risk", "day_trading_risk"]])
    environment: Literal["paper", "live"] | None = Field(None, description="Defaults to the connection's.")


class StatusRequest(BaseModel):
    """`compliance.status`."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")


class HaltRequest(BaseModel):
    """`trading.halt` / `trading.resume`."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=255)
    changed_by: str | None = Field(None, max_length=64)
