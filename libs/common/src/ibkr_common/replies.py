"""The reply shape of every request/reply subject, and the middleware that guarantees one.

`{"ok": true, "result": {...}}` or `{"ok": false, "error": {"code", "message", "details", "retryable"}}`.
A handler exception, or a payload that fails validation, still produces an error reply.

`retryable: true` tells the caller that nothing final was recorded and the same request (the same
`client_order_id` for orders) may be sent again later; `false` means the answer stands.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from typing import Any, TypeVar

from faststream.middlewares import ExceptionMiddleware
from pydantic import BaseModel, ValidationError

from ibkr_common.envelope import jsonable

log = logging.getLogger("ibkr_common.replies")


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
    INTERNAL = "INTERNAL"


#: Codes whose answer does not stand by default: a dependency down or restarting, a limit, no answer in time.
RETRYABLE_CODES = frozenset({ErrorCode.GATEWAY_UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.TIMEOUT,
                             ErrorCode.NOT_AUTHENTICATED, ErrorCode.STATE_UNAVAILABLE})


def is_retryable(code: ErrorCode | str) -> bool:
    """Whether an error of this code is retryable unless the service says otherwise."""
    return code in RETRYABLE_CODES


class ServiceError(Exception):
    """Raise from a handler to answer with a typed error reply.

    `retryable` defaults from the code (`RETRYABLE_CODES`); pass it where the service knows better
    (for example a decision that could not be made on stale state is retryable whatever its code).
    """

    def __init__(self, code: ErrorCode, message: str, details: list[Any] | dict[str, Any] | None = None,
                 *, retryable: bool | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details if details is not None else []
        self.retryable = is_retryable(code) if retryable is None else retryable


class ErrorBody(BaseModel):
    """The `error` member of a failed reply."""

    code: str
    message: str
    details: list[Any] | dict[str, Any] = []
    retryable: bool = False


def ok(result: Any) -> dict[str, Any]:
    """A successful reply carrying `result` (models and Decimals made JSON-safe)."""
    if isinstance(result, BaseModel):
        return {"ok": True, "result": result.model_dump(mode="json")}  # JSON-safe already
    return {"ok": True, "result": jsonable(result)}


def fail(code: ErrorCode | str, message: str, details: list[Any] | dict[str, Any] | None = None, *,
         retryable: bool | None = None) -> dict[str, Any]:
    """A failed reply; `retryable` defaults from the code."""
    return {"ok": False, "error": {"code": str(code), "message": message, "details": jsonable(details or []),
                                   "retryable": is_retryable(code) if retryable is None else retryable}}


def validation_details(exc: ValidationError, strip_argument: bool = False) -> list[dict[str, str]]:
    """One `{field, message}` per problem; `strip_argument` drops the handler argument FastStream puts first."""
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if strip_argument and loc:
            loc = loc[1:]
        field = ".".join(loc) if loc else "body"
        message = err["msg"]
        if err["type"] in ("json_invalid", "model_attributes_type", "dict_type", "model_type") and not loc:
            field, message = "body", "must be a JSON object"
        details.append({"field": field, "message": message})
    return details


def validation_reply(exc: ValidationError, strip_argument: bool = False) -> dict[str, Any]:
    """The VALIDATION_ERROR reply for a pydantic error, naming each field."""
    details = validation_details(exc, strip_argument)
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return fail(ErrorCode.VALIDATION_ERROR, summary or "invalid request", details)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    """Validate `data` as `model`, raising a VALIDATION_ERROR ServiceError that names each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        reply = validation_reply(exc)
        raise ServiceError(ErrorCode.VALIDATION_ERROR, reply["error"]["message"], reply["error"]["details"]) from None


def reply_middleware() -> ExceptionMiddleware:
    """Exception middleware for request/reply routers: every failure becomes an error reply."""
    middleware = ExceptionMiddleware()

    @middleware.add_handler(ValidationError, publish=True)
    async def _on_validation(exc: ValidationError) -> dict[str, Any]:
        # Handlers validate their own inputs with `parse()`, which raises ServiceError; a bare
        # ValidationError here comes from FastStream checking the handler's typed argument.
        return validation_reply(exc, strip_argument=True)

    @middleware.add_handler(json.JSONDecodeError, publish=True)
    async def _on_bad_json(exc: json.JSONDecodeError) -> dict[str, Any]:
        return bad_json_reply(exc)

    @middleware.add_handler(ServiceError, publish=True)
    async def _on_service_error(exc: ServiceError) -> dict[str, Any]:
        return fail(exc.code, exc.message, exc.details, retryable=exc.retryable)

    @middleware.add_handler(Exception, publish=True)
    async def _on_unexpected(exc: Exception) -> dict[str, Any]:
        return unexpected_reply(exc)

    return middleware


def bad_json_reply(exc: json.JSONDecodeError) -> dict[str, Any]:
    """The VALIDATION_ERROR reply for a body declared JSON that is not."""
    details = [{"field": "body", "message": "not valid JSON"}]
    return fail(ErrorCode.VALIDATION_ERROR, f"body: not valid JSON ({exc.msg})", details)


def unexpected_reply(exc: Exception) -> dict[str, Any]:
    """The INTERNAL reply for a handler's unexpected exception (logged with its traceback)."""
    log.exception("handler failed", exc_info=exc)
    return fail(ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}")
