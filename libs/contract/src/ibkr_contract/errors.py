"""The reply shape of every request/reply subject, and the error codes.

`{"ok": true, "result": {...}}` or `{"ok": false, "error": {"code", "message", "details", "retryable"}}`.

`retryable: true` tells the caller that nothing final was recorded and the same request (the same
`client_order_id` for orders) may be sent again later; `false` means the answer stands.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    """Error codes of CONTRACT.md."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    GATEWAY_UNAVAILABLE = "GATEWAY_UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    COMPLIANCE_BLOCKED = "COMPLIANCE_BLOCKED"
    NOT_FOUND = "NOT_FOUND"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    CONFLICT = "CONFLICT"
    ENVIRONMENT_MISMATCH = "ENVIRONMENT_MISMATCH"
    TRADING_HALTED = "TRADING_HALTED"
    TIMEOUT = "TIMEOUT"
    STATE_UNAVAILABLE = "STATE_UNAVAILABLE"
    TOO_LARGE = "TOO_LARGE"
    FORBIDDEN = "FORBIDDEN"
    INTERNAL = "INTERNAL"


#: Codes whose answer does not stand by default: a dependency down or restarting, a limit, no answer in time.
RETRYABLE_CODES = frozenset({ErrorCode.GATEWAY_UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.TIMEOUT,
                             ErrorCode.NOT_AUTHENTICATED, ErrorCode.STATE_UNAVAILABLE})


def is_retryable(code: ErrorCode | str) -> bool:
    """Whether an error of this code is retryable unless the service says otherwise."""
    return code in RETRYABLE_CODES


class ErrorBody(BaseModel):
    """The `error` member of a failed reply."""

    code: str = Field(description="An `ErrorCode`.", examples=["VALIDATION_ERROR"])
    message: str = Field(description="One line for people.")
    details: list[Any] | dict[str, Any] = Field(
        [], description="A list of `{field, message}` for input errors; the Decision for a blocked order.")
    retryable: bool = False


R = TypeVar("R")


class OkReply(BaseModel, Generic[R]):
    """A successful reply."""

    ok: Literal[True] = True
    result: R


class ErrorReply(BaseModel):
    """A failed reply."""

    ok: Literal[False] = False
    error: ErrorBody
