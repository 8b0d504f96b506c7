"""The client's exceptions: one per error code of the contract, and the ways a request can find nobody.

Every exception is an `IbkrError` with `code`, `message`, `details` and `retryable`:

- an error reply of the stack raises the class of its code (`ComplianceBlocked`, `NotFound`, ...);
- `StackNotFound`: no NATS URL given and no `.var/stack.json` found;
- `StackUnavailable`: NATS cannot be reached;
- `ServiceNotRunning`: NATS answered that nobody serves the subject;
- `NoReply`: nobody answered within the timeout (a `RequestTimeout`, code `TIMEOUT`: the outcome may
  still come, as an event).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ibkr_contract.errors import ErrorBody, ErrorCode, is_retryable
from ibkr_contract.orders import Decision

M = TypeVar("M", bound=BaseModel)


class IbkrError(Exception):
    """Base of every error of the client."""

    code: str = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None, details: list[Any] | dict[str, Any] | None = None,
                 retryable: bool | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).code
        self.message = message
        self.details: list[Any] | dict[str, Any] = details if details is not None else []
        self.retryable = is_retryable(self.code) if retryable is None else retryable

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ValidationFailed(IbkrError):
    """`VALIDATION_ERROR`: the request was refused; `details` names each field."""

    code = ErrorCode.VALIDATION_ERROR


class NotAuthenticated(IbkrError):
    """`NOT_AUTHENTICATED`: the gateway has no usable brokerage session (a person must log in)."""

    code = ErrorCode.NOT_AUTHENTICATED


class GatewayUnavailable(IbkrError):
    """`GATEWAY_UNAVAILABLE`: the Client Portal Gateway (or the bridge) did not answer."""

    code = ErrorCode.GATEWAY_UNAVAILABLE


class RateLimited(IbkrError):
    """`RATE_LIMITED`: the gateway's pacing refused the call."""

    code = ErrorCode.RATE_LIMITED


class ComplianceBlocked(IbkrError):
    """`COMPLIANCE_BLOCKED`: a rule blocked the order; `decision` has every reason."""

    code = ErrorCode.COMPLIANCE_BLOCKED

    @property
    def decision(self) -> Decision | None:
        """The Decision carried in `details`, when there is one."""
        if isinstance(self.details, dict) and "decision" in self.details:
            return Decision.model_validate(self.details)
        return None


class NotFound(IbkrError):
    """`NOT_FOUND`: the order, account or contract is not known."""

    code = ErrorCode.NOT_FOUND


class NotSupported(IbkrError):
    """`NOT_SUPPORTED`: the stack understands the request but does not do it."""

    code = ErrorCode.NOT_SUPPORTED


class Conflict(IbkrError):
    """`CONFLICT`: the same client_order_id with another body, or the state forbids the change."""

    code = ErrorCode.CONFLICT


class EnvironmentMismatch(ComplianceBlocked):
    """`ENVIRONMENT_MISMATCH`: the order's environment is not the connection's."""

    code = ErrorCode.ENVIRONMENT_MISMATCH


class TradingHalted(ComplianceBlocked):
    """`TRADING_HALTED`: trading is halted on this connection."""

    code = ErrorCode.TRADING_HALTED


class Forbidden(IbkrError):
    """`FORBIDDEN`: the user the request acts for does not own the connection (or may not do this)."""

    code = ErrorCode.FORBIDDEN


class RequestTimeout(IbkrError):
    """`TIMEOUT`: the work did not finish in its budget; the outcome may still arrive as an event."""

    code = ErrorCode.TIMEOUT


class StateUnavailable(IbkrError):
    """`STATE_UNAVAILABLE`: compliance could not get state fresh enough to decide; nothing was recorded,
    so the same request (the same client_order_id) may be sent again later."""

    code = ErrorCode.STATE_UNAVAILABLE


class TooLarge(IbkrError):
    """`TOO_LARGE`: the answer would exceed the NATS message size; ask for less."""

    code = ErrorCode.TOO_LARGE


class InternalError(IbkrError):
    """`INTERNAL`: an unexpected failure in a service (logged there with its traceback)."""

    code = ErrorCode.INTERNAL


class StackNotFound(IbkrError):
    """No NATS URL was given and no `.var/stack.json` was found from the working directory up."""

    code = "STACK_NOT_FOUND"


class StackUnavailable(IbkrError):
    """NATS could not be reached."""

    code = "STACK_UNAVAILABLE"


class ServiceNotRunning(IbkrError):
    """Nobody serves the subject (NATS answered "no responders"): the service is not running."""

    code = "SERVICE_NOT_RUNNING"


class NoReply(RequestTimeout):
    """No answer within the client's timeout. The request may still have been acted on."""


ERRORS_BY_CODE: dict[str, type[IbkrError]] = {
    cls.code: cls for cls in (
        ValidationFailed, NotAuthenticated, GatewayUnavailable, RateLimited, ComplianceBlocked, NotFound,
        NotSupported, Conflict, EnvironmentMismatch, TradingHalted, RequestTimeout, StateUnavailable, TooLarge,
        Forbidden, InternalError,
    )
}


def error_from_reply(body: ErrorBody) -> IbkrError:
    """The exception of an error reply: the class of its code (`IbkrError` for a code this client does not know)."""
    cls = ERRORS_BY_CODE.get(body.code, IbkrError)
    return cls(body.message, code=body.code, details=body.details, retryable=body.retryable)


def validated(model: type[M], data: dict[str, Any]) -> M:
    """`model` built from `data`, or `ValidationFailed` naming each field (as the stack's VALIDATION_ERROR)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise ValidationFailed(summary, details=details) from None
