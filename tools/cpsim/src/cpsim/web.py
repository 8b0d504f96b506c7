"""HTTP helpers shared by the route modules: errors, gates and body parsing."""

from __future__ import annotations

import json
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


async def json_body(request: Request) -> Any:
    """The parsed JSON body (None when empty); malformed JSON is IBKR's 400."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("malformed JSON body") from exc


def as_dict(body: Any) -> dict[str, Any]:
    """The body as an object ({} when empty); other JSON types are a 400."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def int_param(value: str | None, name: str) -> int:
    """An integer path/query parameter, or 400."""
    try:
        return int(str(value))
    except (TypeError, ValueError) as exc:
        raise bad_request(f"{name} must be an integer") from exc


def ok(body: Any, status: int = 200) -> JSONResponse:
    """A JSON answer."""
    return JSONResponse(body, status_code=status)
