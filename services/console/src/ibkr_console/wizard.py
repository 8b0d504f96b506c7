"""The setup wizard, the user's guide's 4 steps on the registry's commands (`ib.connections.*`):

1. environment (paper or live) and a connection id;
2. gateway (host, port, TLS, CA) and the IBKR username → `connections.create`;
3. verify → `connections.verify`: each check and the accounts read back; per-account options level and
   live enablement → `connections.settings`;
4. acknowledge the disclosures the environment needs → `connections.acknowledge`.

Admins only. The username is sent once and never shown again (the registry answers `username_set`).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ibkr_client.errors import IbkrError
from ibkr_console.actions import error_lines
from ibkr_console.auth import field, guarded, page
from ibkr_console.context import NotYours, View, load_view, render
from ibkr_console.stack import StackAccess
from ibkr_console.users import Account
from ibkr_contract.connections import ConnectionView, VerifyResult

STEPS = ("environment", "gateway", "verify", "acknowledge")


async def _header(request: Request) -> View | None:
    """The current connection for the page's header (its environment on every page), when there is one."""
    account = getattr(request.state, "account", None)
    if account is None:
        return None
    try:
        return await load_view(request, account)
    except (NotYours, IbkrError):
        return None


async def _render(request: Request, step: int, *, conn: ConnectionView | None = None,
                  verify: VerifyResult | None = None, form: dict[str, Any] | None = None, error: str | None = None,
                  reasons: list[str] | None = None, status_code: int = 200) -> Response:
    return render(request, "wizard.html", await _header(request), step=step, steps=STEPS, conn=conn, verify=verify,
                  form=form or {}, error=error, reasons=reasons or [], status_code=status_code)


async def _get(request: Request, account: Account, connection: str) -> ConnectionView:
    stack: StackAccess = request.app.state.stack
    ib = await stack.client()
    return await ib.connections.get(connection, user_id=account.owner_user_id)


@page
async def wizard_page(request: Request, account: Account) -> Response:
    """The step the connection is at (`?connection=`), or step 1."""
    connection = request.query_params.get("connection")
    if not connection:
        return await _render(request, 1, form={"environment": "paper"})
    try:
        conn = await _get(request, account, connection)
    except IbkrError as exc:
        return await _render(request, 1, error=f"{exc.code}: {exc.message}", status_code=404)
    step = 3 if conn.state == "unverified" else 4
    return await _render(request, step, conn=conn)


@guarded("admin")
async def wizard_step(request: Request, account: Account, form: FormData) -> Response:
    stack: StackAccess = request.app.state.stack
    ib = await stack.client()
    step = field(form, "step")
    connection = field(form, "connection")
    owner = account.owner_user_id
    values = {k: field(form, k) for k in ("connection", "environment", "host", "port", "ca_pem")}
    try:
        if step == "environment":
            if values["environment"] not in ("paper", "live"):
                return await _render(request, 1, form=values, error="environment: paper or live", status_code=422)
            return await _render(request, 2, form=values)
        if step == "gateway":
            port = int(values["port"]) if values["port"].isdigit() else 0
            conn = await ib.connections.create(
                connection, user_id=owner, environment=values["environment"],  # type: ignore[arg-type]
                host=values["host"], port=port, username=field(form, "username"),
                ssl=field(form, "ssl") == "on", ca_pem=values["ca_pem"] or None)
            return await _render(request, 3, conn=conn)
        if step == "verify":
            verify = await ib.connections.verify(connection, user_id=owner)
            return await _render(request, 3, conn=verify.connection, verify=verify)
        if step == "settings":
            conn = await _get(request, account, connection)
            accounts = [{"account_id": a.account_id,
                         "options_level": int(field(form, f"level_{a.account_id}") or 0),
                         "live_enabled": field(form, f"live_{a.account_id}") == "on"} for a in conn.accounts]
            conn = await ib.connections.settings(connection, user_id=owner, accounts=accounts)
            return await _render(request, 4, conn=conn)
        if step == "acknowledge":
            chosen = [str(v) for v in form.getlist("disclosure") if isinstance(v, str)]
            conn = await ib.connections.acknowledge(connection, user_id=owner, disclosures=chosen)
            if conn.enabled:
                request.session["flash"] = {"kind": "ok", "text": f"connection {conn.connection} is enabled",
                                            "details": []}
                return RedirectResponse(f"/?conn={conn.connection}", status_code=303)
            return await _render(request, 4, conn=conn, error="still missing: " + ", ".join(conn.missing_disclosures))
    except IbkrError as exc:
        back_to = {"gateway": 2, "verify": 3, "settings": 3, "acknowledge": 4}.get(step, 1)
        conn = None
        if back_to > 2:
            try:
                conn = await _get(request, account, connection)
            except IbkrError:
                conn = None
        return await _render(request, back_to, conn=conn, form=values, error=f"{exc.code}: {exc.message}",
                       reasons=error_lines(exc), status_code=422)
    return await _render(request, 1, form=values, error="step: unknown", status_code=422)
