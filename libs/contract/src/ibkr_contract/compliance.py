"""Compliance's own public subjects besides the orders: disclosures, status and the halt switch.

(`compliance.acknowledge`, `compliance.status`, `trading.halt`, `trading.resume`.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AcknowledgeRequest(BaseModel):
    """`compliance.acknowledge`: the user acknowledges disclosures (in the connection's environment)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)
    disclosures: list[str] = Field(min_length=1, max_length=20, examples=[["options_risk", "day_trading_risk"]])
    environment: Literal["paper", "live"] | None = Field(None, description="Defaults to the connection's.")


class AcknowledgedDisclosure(BaseModel):
    """One stored acknowledgment (an earlier one of the same version keeps its time)."""

    id: str
    version: str
    environment: Literal["paper", "live"]
    acknowledged_at: datetime


class AcknowledgeResult(BaseModel):
    """`compliance.acknowledge` result: what was stored, and what is still missing."""

    acknowledged: list[AcknowledgedDisclosure] = []
    missing_acknowledgments: list[str] = []


class StatusRequest(BaseModel):
    """`compliance.status`."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=64)
    account_id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")


class DisclosureState(BaseModel):
    """A disclosure the environment requires, and whether the user acknowledged its current version."""

    id: str
    title: str
    version: str
    acknowledged: bool


class ComplianceStatus(BaseModel):
    """`compliance.status` result. An account not synced yet answers with nulls and `account_synced: false`."""

    account_id: str
    environment: Literal["paper", "live"]
    regime: Literal["legacy_pdt", "intraday_margin"] | None = None
    day_trades_used: int | None = None
    day_trades_remaining: int | None = Field(None, description="-1 means unlimited.")
    options_level: int | None = None
    missing_acknowledgments: list[str] = []
    disclosures: list[DisclosureState] = []
    halted: bool
    account_synced: bool
    synced_at: datetime | None = None


class HaltRequest(BaseModel):
    """`trading.halt` / `trading.resume`."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=255)
    changed_by: str | None = Field(None, max_length=64)
    user_id: str | None = Field(None, max_length=64, description="The user the caller acts for; checked against "
                                "the connection's owner (FORBIDDEN).")


class HaltResult(BaseModel):
    """`trading.halt` / `trading.resume` result: the switch as it is now."""

    halted: bool
    reason: str | None = None
