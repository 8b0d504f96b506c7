"""What every page needs: the user's connections, the chosen connection and account, its environment,
the halt switch and the session, and rendering with the CSRF token and the user's role."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from ibkr_client import IbkrClient
from ibkr_client.errors import IbkrError
from ibkr_console.auth import csrf_token, may
from ibkr_console.stack import Conn, StackAccess
from ibkr_console.users import Account
from ibkr_contract.compliance import ComplianceStatus
from ibkr_contract.session import SessionStatusResult
from ibkr_contract.status import ServiceStatus

EXPIRY_WARNING_S = 3600


class NotYours(Exception):
    """The connection asked for is not one of the user's."""


@dataclass
class View:
    """The chosen connection and account, and the header's facts."""

    account: Account
    conns: list[Conn]
    conn: Conn
    ib: IbkrClient
    accounts: list[str]
    account_id: str | None
    halted: bool | None = None
    halt_reason: str | None = None
    session: SessionStatusResult | None = None
    services: dict[str, ServiceStatus | IbkrError] = field(default_factory=dict)
    _compliance: ComplianceStatus | IbkrError | None = field(default=None, init=False, repr=False)

    async def compliance(self) -> ComplianceStatus | IbkrError | None:
        """`compliance.status` of the chosen account for the owner (read once per request; None without an
        account): the halt's reason and the account's open IBKR questions, whoever placed the orders."""
        if self._compliance is None and self.account_id:
            try:
                self._compliance = await self.ib.compliance.status(self.account.owner_user_id, self.account_id,
                                                                   timeout=3.0)
            except IbkrError as exc:
                self._compliance = exc
        return self._compliance

    async def open_questions(self) -> dict[str, Any]:
        """The Orders page's IBKR questions (`questions.html`): `questions` (each an `OpenQuestion`),
        `truncated`, and `error` when compliance did not answer."""
        status = await self.compliance()
        if isinstance(status, IbkrError):
            return {"questions": [], "truncated": False, "error": f"questions: {status.code}: {status.message}"}
        if status is None:
            return {"questions": [], "truncated": False, "error": None}
        return {"questions": status.questions, "truncated": status.questions_truncated, "error": None}

    @property
    def live(self) -> bool:
        return self.conn.environment == "live"

    def warnings(self) -> list[str]:
        """The keeper's warning and what else an operator should look at now."""
        found = []
        s = self.session
        if s is None:
            found.append("session state unknown: the session-keeper does not answer")
        else:
            if not s.authenticated:
                found.append(f"session not authenticated ({s.reason or s.status}): re-authenticate")
            if s.competing:
                found.append("another login competes for the brokerage session")
            if s.seconds_left is not None and s.seconds_left < EXPIRY_WARNING_S:
                found.append(f"the session expires in {s.seconds_left // 60} min: re-authenticate before then")
            if s.in_maintenance:
                found.append(f"inside a maintenance window ({s.maintenance_window}): failures are expected")
        for name, answer in self.services.items():
            if isinstance(answer, IbkrError):
                found.append(f"{name} does not answer")
        return found


async def load_view(request: Request, account: Account, *, full: bool = False) -> View:
    """The view of the request's connection (`?conn=`, else the last chosen, else the first)."""
    stack: StackAccess = request.app.state.stack
    conns = await stack.connections(account.owner_user_id)
    if not conns:
        raise NotYours("no connection belongs to the owner this account acts for")
    wanted = request.query_params.get("conn") or request.session.get("conn")
    conn = next((c for c in conns if c.id == wanted), None)
    if conn is None and request.query_params.get("conn"):
        raise NotYours(f"connection {wanted!r} is not one of yours")
    conn = conn or conns[0]
    request.session["conn"] = conn.id
    ib = await stack.client(conn.id, conn.environment)
    accounts = await stack.accounts(conn.id)
    wanted_account = request.query_params.get("account") or request.session.get("account")
    account_id = wanted_account if wanted_account in accounts else (accounts[0] if accounts else None)
    if account_id:
        request.session["account"] = account_id
    view = View(account, conns, conn, ib, accounts, account_id)
    try:
        view.session = await ib.session.status(timeout=3.0)
    except IbkrError:
        view.session = None
    if full:
        view.services = await ib.services(timeout=2.0)
        compliance = view.services.get("compliance")
    else:
        try:
            compliance = await ib.service_status("compliance", timeout=2.0)
        except IbkrError as exc:
            compliance = exc
    if isinstance(compliance, ServiceStatus):
        view.halted = bool(compliance.details.get("halted"))
    if view.halted:  # why, and who: compliance keeps it with the switch
        status = await view.compliance()
        if isinstance(status, ComplianceStatus) and status.halt is not None:
            view.halt_reason = f"{status.halt.reason or ''} (by {status.halt.changed_by or 'unknown'})"
    return view


async def gather_quietly(*calls: Any) -> list[Any]:
    """Run reads side by side; a failed read is its exception (the page shows it)."""
    return list(await asyncio.gather(*calls, return_exceptions=True))


def money(value: Any, places: int = 2) -> str:
    """`1234567.891` as `1,234,567.89` (blank for None)."""
    if value is None or value == "":
        return "–"
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{number:,.{places}f}"


def when(value: Any) -> str:
    """A time as `2026-12-07 21:30:05 UTC`."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def make_templates(directory: str) -> Jinja2Templates:
    templates = Jinja2Templates(directory=directory)
    templates.env.filters["money"] = money
    templates.env.filters["when"] = when
    templates.env.globals["may"] = may
    return templates


def render(request: Request, name: str, view: View | None, **values: Any) -> Response:
    """A page with the header's facts, the user's rights and the CSRF token; the flash message once."""
    templates: Jinja2Templates = request.app.state.templates
    flash = request.session.pop("flash", None)
    context = {"view": view, "user": getattr(request.state, "account", None), "csrf": csrf_token(request),
               "flash": flash, "now": datetime.now(UTC), "path": request.url.path, **values}
    status = int(values.pop("status_code", 200)) if "status_code" in values else 200
    return templates.TemplateResponse(request, name, context, status_code=status)


def flash(request: Request, kind: str, text: str, details: list[str] | None = None) -> None:
    """A message shown once on the next page (kind: ok, warn, error)."""
    request.session["flash"] = {"kind": kind, "text": text, "details": details or []}
