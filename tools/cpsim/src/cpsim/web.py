"""HTTP helpers shared by the route modules: errors, gates and body parsing."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from cpsim.accounts import Account
from cpsim.state import SimState


class ApiError(Exception):
    """An error answer with IBKR's status and body."""

    def __init__(self, status: int, body: Any, text: bool = False) -> None:
        super().__init__(f"{status}: {body!r}")
        self.status, self.body, self.text = status, body, text

    def response(self) -> Response:
        """The Starlette response for this error."""
        if self.text:
            return PlainTextResponse(str(self.body), status_code=self.status)
        return JSONResponse(self.body, status_code=self.status)


def bad_request(message: str) -> ApiError:
    """IBKR's `{"error": "Bad Request: ...", "statusCode": 400}`."""
    return ApiError(400, {"error": f"Bad Request: {message}", "statusCode": 400})


def not_authenticated() -> ApiError:
    """401 with a text/plain reason, as the gateway answers without a session."""
    return ApiError(401, "Unauthorized", text=True)


def need_sso(state: SimState) -> None:
    """401 unless a (read-only) session exists."""
    if not state.session.sso:
        raise not_authenticated()


def need_brokerage(state: SimState) -> None:
    """400 `no bridge` unless the brokerage session is ours."""
    need_sso(state)
    if not state.session.authenticated:
        raise bad_request("no bridge")


def need_accounts(state: SimState) -> None:
    """400 unless /iserver/accounts was called in this brokerage session."""
    need_brokerage(state)
    if not state.session.preflight.accounts_queried:
        raise bad_request("Please query /accounts first")


def need_portfolio(state: SimState) -> None:
    """400 unless /portfolio/accounts (or subaccounts) was called first."""
    need_sso(state)
    if not state.session.portfolio_queried:
        raise bad_request("Please query /portfolio/accounts first")


def iserver_account(state: SimState, account_id: str) -> Account:
    """The account of an /iserver path, or IBKR's 400 `accountId is not valid`."""
    acct = state.accounts.get(account_id)
    if acct is None:
        raise bad_request(f"accountId is not valid: {account_id}")
    return acct


def portfolio_account(state: SimState, account_id: str) -> Account:
    """The account of a /portfolio path (same error as /iserver)."""
    return iserver_account(state, account_id)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes) -> Any:
    """Strict JSON (RFC 8259): no NaN/Infinity, no number that overflows a double."""
    return json.loads(raw, parse_float=_finite, parse_int=int, parse_constant=_no_constant)


async def _parsed(request: Request, malformed: Callable[[], ApiError]) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise malformed() from exc


async def json_body(request: Request) -> Any:
    """The parsed JSON body (None when empty); malformed JSON is IBKR's 400."""
    return await _parsed(request, lambda: bad_request("malformed JSON body"))


def as_dict(body: Any) -> dict[str, Any]:
    """The body as an object ({} when empty); other JSON types are a 400."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def order_error(status: int, body: Any) -> tuple[int, Any]:
    """An order engine answer in IBKR's style: a 500 carries `{"error": "<reason>"}` with no `Bad Request:` prefix.

    REFERENCE.md 5 and 7.4: bad order content is `500 {"error": ...}` (OpenAPI errorOnlyResponse); the
    `Bad Request: ...` text with `statusCode` belongs to the 400 answers only.
    """
    if status == 500 and isinstance(body, dict) and isinstance(body.get("error"), str):
        return status, {"error": body["error"].removeprefix("Bad Request: ")}
    return status, body


def int_param(value: str | None, name: str) -> int:
    """An integer path/query parameter, or 400."""
    try:
        return int(str(value))
    except (TypeError, ValueError) as exc:
        raise bad_request(f"{name} must be an integer") from exc


def ok(body: Any, status: int = 200) -> JSONResponse:
    """A JSON answer."""
    return JSONResponse(body, status_code=status)


# ---- the /sim control API: a bad body is a 400 with a JSON error naming the field ----------------


def sim_error(field: str, message: str) -> ApiError:
    """400 `{"error": "<field> <message>", "field": "<field>"}`."""
    return ApiError(400, {"error": f"{field} {message}", "field": field})


async def sim_json(request: Request) -> Any:
    """The parsed body of a /sim call (None when empty); malformed JSON names the field `body`."""
    return await _parsed(request, lambda: sim_error("body", "is not valid JSON"))


def sim_object(value: Any, field: str = "body") -> dict[str, Any]:
    """An object ({} for an empty body)."""
    if value is None and field == "body":
        return {}
    if not isinstance(value, dict):
        raise sim_error(field, "must be a JSON object")
    return value


def sim_number(value: Any, field: str, minimum: Decimal | None = None) -> Decimal:
    """A finite number (JSON number or numeric string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise sim_error(field, "must be a number")
    try:
        out = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise sim_error(field, "must be a number") from exc
    if not out.is_finite():
        raise sim_error(field, "must be a finite number")
    if minimum is not None and out < minimum:
        raise sim_error(field, f"must be at least {minimum}")
    return out


def sim_int(value: Any, field: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number (JSON number or numeric string) within [minimum, maximum]."""
    number = sim_number(value, field)
    if number != number.to_integral_value():
        raise sim_error(field, "must be a whole number")
    out = int(number)
    if minimum is not None and out < minimum:
        raise sim_error(field, f"must be at least {minimum}")
    if maximum is not None and out > maximum:
        raise sim_error(field, f"must be at most {maximum}")
    return out


def sim_seconds(value: Any, field: str, limit: float = 10 * 366 * 86400) -> float:
    """A finite number of seconds, at most `limit` either way (default about ten years)."""
    out = float(sim_number(value, field))
    if not math.isfinite(out) or abs(out) > limit:
        raise sim_error(field, f"must be between -{limit:.0f} and {limit:.0f} seconds")
    return out


def sim_bool(value: Any, field: str) -> bool:
    """A JSON boolean (no truthy strings: "false" is not false)."""
    if not isinstance(value, bool):
        raise sim_error(field, "must be true or false")
    return value


def sim_str(value: Any, field: str, choices: tuple[str, ...] = ()) -> str:
    """A non-empty string (one of `choices` when given)."""
    if not isinstance(value, str) or not value.strip():
        raise sim_error(field, "must be a non-empty string")
    if choices and value not in choices:
        raise sim_error(field, "must be one of " + ", ".join(choices))
    return value


def sim_time(value: Any, field: str) -> datetime:
    """An ISO 8601 time (naive means UTC) between the years 1971 and 2199."""
    if not isinstance(value, str):
        raise sim_error(field, "must be an ISO 8601 time")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise sim_error(field, "must be an ISO 8601 time") from exc
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if not 1971 <= when.astimezone(UTC).year <= 2199:
        raise sim_error(field, "must be a time between the years 1971 and 2199")
    return when
