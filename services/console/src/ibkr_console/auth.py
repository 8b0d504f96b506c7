"""Sign-in, roles and CSRF for the console's routes.

- The session is Starlette's signed cookie (HttpOnly, SameSite=Lax, Secure unless the operator turned it
  off for plain-HTTP localhost); it holds the username, the CSRF token and the sign-in time, nothing secret.
- Every request re-reads the account from `console_users` (a removed or demoted user loses rights at once).
- Every POST names the role it needs; `guarded` refuses it (403) for a lesser role and for a missing or
  wrong CSRF token, whatever the page showed.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ibkr_console.users import Account, Role, UserStore, rank

Handler = Callable[[Request], Awaitable[Response]]
FormHandler = Callable[[Request, Account, FormData], Awaitable[Response]]
SESSION_COOKIE = "ibkr_console"


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_matches(request: Request, sent: object) -> bool:
    """Whether `sent` is the session's CSRF token (compared in constant time)."""
    expected = request.session.get("csrf")
    return isinstance(sent, str) and isinstance(expected, str) and hmac.compare_digest(sent, expected)


def sign_in(request: Request, account: Account) -> None:
    """A fresh session for `account` (the old session's values, the CSRF token too, are dropped)."""
    request.session.clear()
    request.session.update({"user": account.username, "at": int(time.time()), "csrf": secrets.token_urlsafe(32)})


def sign_out(request: Request) -> None:
    request.session.clear()


async def current_account(request: Request) -> Account | None:
    """The signed-in account (None when nobody is, the session expired, or the user is gone)."""
    username = request.session.get("user")
    if not isinstance(username, str):
        return None
    max_age = request.app.state.session_seconds
    if int(request.session.get("at", 0)) + max_age < time.time():
        request.session.clear()
        return None
    store: UserStore = request.app.state.users
    return await store.get(username)


def signin_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def page(handler: Callable[[Request, Account], Awaitable[Response]]) -> Handler:
    """A GET route for any signed-in account."""

    async def route(request: Request) -> Response:
        account = await current_account(request)
        if account is None:
            return signin_redirect(request)
        request.state.account = account
        return await handler(request, account)

    return route


def guarded(role: Role) -> Callable[[FormHandler], Handler]:
    """A POST route: signed in, at least `role`, a valid CSRF token in the form (`csrf`)."""

    def wrap(handler: FormHandler) -> Handler:
        async def route(request: Request) -> Response:
            account = await current_account(request)
            if account is None:
                return PlainTextResponse("sign in first", status_code=401)
            form = await request.form()
            if not csrf_matches(request, form.get("csrf")):
                return PlainTextResponse("the form is out of date (CSRF token missing or wrong); reload the page",
                                         status_code=403)
            if rank(account.role) < rank(role):
                return PlainTextResponse(f"{account.role} may not do this ({role} needed)", status_code=403)
            request.state.account = account
            return await handler(request, account, form)

        route.required_role = role  # type: ignore[attr-defined]
        return route

    return wrap


def may(account: Account | None, role: Role) -> bool:
    """Whether `account` holds at least `role` (templates hide the buttons it may not use)."""
    return account is not None and rank(account.role) >= rank(role)


def field(form: FormData, name: str, default: str = "") -> str:
    """A form field as stripped text."""
    value: Any = form.get(name, default)
    return value.strip() if isinstance(value, str) else default
