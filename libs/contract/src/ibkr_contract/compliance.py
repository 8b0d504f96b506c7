"""Compliance's own public subjects besides the orders: disclosures, status and the halt switch.

(`compliance.acknowledge`, `compliance.status` with the halt's reason and the account's open IBKR questions,
`trading.halt`, `trading.resume`.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ibkr_contract.types import PlainDecimal

#: The most open questions `compliance.status` lists (newest first); `questions_truncated` says when more wait.
MAX_QUESTIONS = 100


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


class QuestionOrder(BaseModel):
    """The order an open question is about, as compliance's ledger keeps it (the changed order for a modify)."""

    symbol: str | None = Field(None, description="The instrument's symbol; legs' symbols joined by '/'; "
                               "null when the order named a conid only.")
    conid: int | None = None
    sec_type: str | None = None
    side: Literal["BUY", "SELL"] | None = None
    quantity: PlainDecimal | None = None
    order_type: str | None = None
    limit_price: PlainDecimal | None = None
    stop_price: PlainDecimal | None = None
    tif: str | None = None


class OpenQuestion(BaseModel):
    """An order waiting for the user's answer to IBKR's question (ledger status `confirmation_required`),
    whoever placed it; `orders.confirm` with its `client_order_id` and `reply_id` answers it."""

    client_order_id: str
    reply_id: str
    messages: list[str] = []
    message_ids: list[str] = []
    action: Literal["place", "modify"] = Field("place", description="modify: the question is about a change "
                                               "to the working order `order_id`.")
    order_id: str | None = None
    order: QuestionOrder
    asked_at: datetime = Field(description="When compliance recorded the question.")


class HaltState(BaseModel):
    """Why trading is halted, as `trading.halt` recorded it."""

    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None


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
    halt: HaltState | None = Field(None, description="The halt's reason, who and when; null while trading runs.")
    questions: list[OpenQuestion] = Field([], description=f"The account's orders waiting for an answer to IBKR's "
                                          f"question, newest first (at most {MAX_QUESTIONS}).")
    questions_truncated: bool = Field(False, description="More questions wait than `questions` lists.")


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
