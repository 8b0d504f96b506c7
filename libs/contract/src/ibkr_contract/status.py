"""`ibkr.<conn>.status.<service>`: each service says that it runs, and a few facts an operator asks about."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

from ibkr_contract.types import jsonable


class ServiceStatusRequest(BaseModel):
    """The body of `status.<service>`: `{}`."""

    model_config = ConfigDict(extra="forbid")


class ServiceStatus(BaseModel):
    """One service's answer: its name, version, when it started, and facts of its own in `details`.

    `details` per service: compliance `{halted, halt_reason?}`; sync-worker `{accounts, last_sync_at, paused,
    last_failed}`; session-keeper `{status, authenticated}`; audit `{last_seq}`; gateway-bridge `{}`.
    """

    service: str = Field(examples=["compliance"])
    version: str = Field(description="The service package's version.")
    connection: str
    started_at: AwareDatetime
    now: datetime = Field(description="The service's clock when it answered (UTC).")
    details: dict[str, Any] = {}

    @field_serializer("details", when_used="json")
    def _plain(self, value: dict[str, Any]) -> dict[str, Any]:
        return jsonable(value)
