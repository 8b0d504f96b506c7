"""The console's ASGI app: routes, sessions, templates, the live hub, and its start and stop."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ibkr_common.db.engine import make_engine
from ibkr_console import actions, pages, wizard
from ibkr_console.auth import SESSION_COOKIE, csrf_matches, current_account, field, guarded, sign_in, sign_out
from ibkr_console.context import make_templates, render
from ibkr_console.live import LiveHub
from ibkr_console.settings import ConsoleSettings
from ibkr_console.stack import StackAccess
from ibkr_console.users import Account, UserStore, ensure_first_admin

log = logging.getLogger("ibkr_console.app")
HERE = Path(__file__).parent


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no host, no `//`): never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


async def signin_page(request: Request) -> Response:
    return render(request, "signin.html", None, next=_safe_next(request.query_params.get("next")), error=None)


async def signin(request: Request) -> Response:
    form = await request.form()
    if not csrf_matches(request, form.get("csrf")):  # no signing in through another site's form either
        return PlainTextResponse("the form is out of date (CSRF token missing or wrong); reload the page",
                                 status_code=403)
    store: UserStore = request.app.state.users
    account = await store.authenticate(field(form, "username"), str(form.get("password") or ""))
    target = _safe_next(field(form, "next"))
    if account is None:
        log.info("console sign-in refused")
        return render(request, "signin.html", None, next=target, error="wrong username or password",
                      status_code=401)
    sign_in(request, account)
    log.info("console sign-in: %s (%s)", account.username, account.role)
    return RedirectResponse(target, status_code=303)


@guarded("viewer")
async def signout(request: Request, account: Account, form: Any) -> Response:
    sign_out(request)
    return RedirectResponse("/signin", status_code=303)


async def root_redirect(request: Request) -> Response:
    if await current_account(request) is None:
        return RedirectResponse("/signin", status_code=303)
    return await pages.overview(request)


def routes() -> list[Route | Mount]:
    return [
        Route("/", root_redirect, methods=["GET"]),
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/account", pages.account_page, methods=["GET"]),
        Route("/positions", pages.positions_page, methods=["GET"]),
        Route("/positions/close", actions.close_position, methods=["POST"]),
        Route("/orders", pages.orders_page, methods=["GET"]),
        Route("/orders/cancel", actions.cancel_order, methods=["POST"]),
        Route("/orders/modify", actions.modify_order, methods=["POST"]),
        Route("/orders/answer", actions.answer_question, methods=["POST"]),
        Route("/ticket", pages.ticket_page, methods=["GET"]),
        Route("/ticket", actions.ticket, methods=["POST"]),
        Route("/compliance", pages.compliance_page, methods=["GET"]),
        Route("/compliance/acknowledge", actions.acknowledge, methods=["POST"]),
        Route("/compliance/switch", actions.halt_switch, methods=["POST"]),
        Route("/audit", pages.audit_page, methods=["GET"]),
        Route("/audit/export", pages.audit_export, methods=["GET"]),
        Route("/session/sync", actions.sync_now, methods=["POST"]),
        Route("/session/reauthenticate", actions.reauthenticate, methods=["POST"]),
        Route("/session/logout", actions.session_logout, methods=["POST"]),
        Route("/setup", wizard.wizard_page, methods=["GET"]),
        Route("/setup", wizard.wizard_step, methods=["POST"]),
        Route("/events", pages.events_stream, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def build_app(settings: ConsoleSettings, *, users: UserStore | None = None) -> Starlette:
    """The console; the database and NATS are reached when it starts (its lifespan)."""
    engine = make_engine(settings.database_url)
    store = users or UserStore(engine)
    stack = StackAccess(settings)
    hub = LiveHub(stack)
    key = settings.console_session_key.get_secret_value() if settings.console_session_key else \
        secrets.token_urlsafe(48)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.console_admin_file is not None:
            await ensure_first_admin(store, settings.console_admin_file, settings.console_admin_username,
                                     settings.user_id)
        hub.feed(settings.connection)  # the bootstrap connection's events, read from the start
        try:
            yield
        finally:
            await hub.close()
            await stack.close()
            await engine.dispose()

    app = Starlette(routes=routes(), lifespan=lifespan, middleware=[
        Middleware(SessionMiddleware, secret_key=key, session_cookie=SESSION_COOKIE,
                   max_age=settings.console_session_hours * 3600, same_site="lax",
                   https_only=settings.console_secure_cookies),
        Middleware(SecurityHeaders),
    ])
    app.state.settings = settings
    app.state.users = store
    app.state.stack = stack
    app.state.hub = hub
    app.state.engine = engine
    app.state.templates = make_templates(str(HERE / "templates"))
    app.state.session_seconds = settings.console_session_hours * 3600
    return app


class SecurityHeaders:
    """No framing, no sniffing, no referrer to other sites, scripts and styles from this site only."""

    HEADERS = [
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"content-security-policy",
         b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
        (b"cache-control", b"no-store"),
    ]

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [h for h in self.HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, with_headers)
