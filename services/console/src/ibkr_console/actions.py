"""The actions (POST): each checks the role and the CSRF token (`guarded`), acts through the client, and
answers on the page (a flash message after a redirect, or the page itself with the outcome)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ibkr_client.errors import ComplianceBlocked, IbkrError, ValidationFailed
from ibkr_console.auth import field, guarded
from ibkr_console.context import NotYours, View, flash, load_view, render
from ibkr_console.users import Account
from ibkr_contract.orders import Decision, OrderResult


def back(request: Request, fallback: str = "/") -> Response:
    target = request.headers.get("referer") or fallback
    path = "/" + target.split("://", 1)[-1].split("/", 1)[-1] if "://" in target else target
    return RedirectResponse(path or fallback, status_code=303)


ViewHandler = Callable[[Request, Account, FormData, View], Awaitable[Response]]


def on_view(handler: ViewHandler) -> Callable[[Request, Account, FormData], Awaitable[Response]]:
    """An action on the request's connection: its view loaded first (403 when it is not the account's)."""

    async def act(request: Request, account: Account, form: FormData) -> Response:
        try:
            view = await load_view(request, account)
        except NotYours as exc:
            return PlainTextResponse(str(exc), status_code=403)
        return await handler(request, account, form, view)

    return act


def error_lines(exc: IbkrError) -> list[str]:
    """The reasons of a refusal: a decision's reasons, or the fields named by a validation error."""
    lines: list[str] = []
    decision = getattr(exc, "decision", None)
    if isinstance(decision, Decision):
        lines += [f"{r.severity} {r.code}: {r.message}" for r in decision.reasons]
    details: Any = exc.details
    if isinstance(details, list):
        lines += [f"{d.get('field')}: {d.get('message')}" for d in details if isinstance(d, dict)]
    return lines


def describe(result: OrderResult) -> tuple[str, list[str]]:
    reasons = [f"{r.severity} {r.code}: {r.message}" for r in result.reasons]
    text = f"decision {result.decision}, status {result.status}" + (
        f", order {result.order_id}" if result.order_id else "") + (f": {result.message}" if result.message else "")
    return text, reasons


@guarded("trader")
@on_view
async def sync_now(request: Request, account: Account, form: FormData, view: View) -> Response:
    try:
        done = await view.ib.sync.trigger(view.account_id, user_id=account.owner_user_id)
        flash(request, "ok", f"synced at {done.synced_at:%H:%M:%S} UTC: {done.positions} positions, "
              f"{done.orders} orders, {len(done.problems)} problems", [p.message for p in done.problems])
    except IbkrError as exc:
        flash(request, "error", f"sync failed: {exc.code}: {exc.message}")
    return back(request)


@guarded("admin")
@on_view
async def reauthenticate(request: Request, account: Account, form: FormData, view: View) -> Response:
    try:
        status = await view.ib.session.reauthenticate(user_id=account.owner_user_id, timeout=30.0)
        flash(request, "ok" if status.authenticated else "warn",
              f"re-authentication: session {status.status}" + (f" ({status.reason})" if status.reason else ""))
    except IbkrError as exc:
        flash(request, "error", f"re-authentication failed: {exc.code}: {exc.message}")
    return back(request)


@guarded("admin")
@on_view
async def session_logout(request: Request, account: Account, form: FormData, view: View) -> Response:
    try:
        done = await view.ib.session.logout(user_id=account.owner_user_id)
        flash(request, "ok" if done.logged_out else "warn",
              "logged out of the gateway" if done.logged_out else "the gateway did not confirm the log-out")
    except IbkrError as exc:
        flash(request, "error", f"log-out failed: {exc.code}: {exc.message}")
    return back(request)


@guarded("trader")
@on_view
async def close_position(request: Request, account: Account, form: FormData, view: View) -> Response:
    try:
        fields: dict[str, Any] = {}
        if field(form, "quantity"):
            fields["quantity"] = field(form, "quantity")
        result = await view.ib.positions.close(view.account_id or "", int(field(form, "conid") or 0),
                                               account.owner_user_id, **fields)
        text, reasons = describe(result)
        flash(request, "ok" if result.decision != "block" else "error", f"close: {text}", reasons)
    except ComplianceBlocked as exc:
        flash(request, "error", f"close blocked: {exc.message}", error_lines(exc))
    except (IbkrError, ValueError) as exc:
        flash(request, "error", f"close failed: {exc}", error_lines(exc) if isinstance(exc, IbkrError) else [])
    return back(request, "/positions")


@guarded("trader")
@on_view
async def cancel_order(request: Request, account: Account, form: FormData, view: View) -> Response:
    try:
        done = await view.ib.orders.cancel(view.account_id or "", field(form, "order_id") or None,
                                           user_id=account.owner_user_id)
        flash(request, "ok", f"cancel of order {done.order_id}: {done.status}" + (
            f" ({done.message})" if done.message else ""))
    except IbkrError as exc:
        flash(request, "error", f"cancel failed: {exc.code}: {exc.message}", error_lines(exc))
    return back(request, "/orders")


@guarded("trader")
@on_view
async def modify_order(request: Request, account: Account, form: FormData, view: View) -> Response:
    try:
        result = await view.ib.orders.modify(
            view.account_id or "", field(form, "order_id"), quantity=field(form, "quantity") or None,
            limit_price=field(form, "limit_price") or None, stop_price=field(form, "stop_price") or None,
            user_id=account.owner_user_id)
        text, reasons = describe(result)
        flash(request, "ok", f"modify: {text}", reasons)
    except IbkrError as exc:
        flash(request, "error", f"modify refused: {exc.code}: {exc.message}", error_lines(exc))
    return back(request, "/orders")


@guarded("trader")
@on_view
async def answer_question(request: Request, account: Account, form: FormData, view: View) -> Response:
    cid, reply_id = field(form, "client_order_id"), field(form, "reply_id")
    yes = field(form, "answer") == "confirm"
    try:
        result = await view.ib.orders.confirm(cid, reply_id, yes, answered_by=account.username,
                                             user_id=account.owner_user_id)
        text, reasons = describe(result)
        flash(request, "ok", f"{'confirmed' if yes else 'declined'}: {text}", reasons)
    except IbkrError as exc:
        flash(request, "error", f"answer failed: {exc.code}: {exc.message}", error_lines(exc))
    return back(request, "/orders")


@guarded("trader")
@on_view
async def ticket(request: Request, account: Account, form: FormData, view: View) -> Response:
    """`action=check`: the decision and every reason; `action=submit`: placed once, when allowed."""
    values = {k: field(form, k) for k in ("symbol", "side", "quantity", "order_type", "limit_price",
                                          "stop_price", "tif", "client_order_id")}
    order: dict[str, Any] = {"account_id": view.account_id or "", "user_id": account.owner_user_id,
                             "symbol": values["symbol"].upper(), "side": values["side"] or "BUY",
                             "quantity": values["quantity"], "order_type": values["order_type"] or "LMT",
                             "tif": values["tif"] or "DAY"}
    for price in ("limit_price", "stop_price"):
        if values[price]:
            order[price] = values[price]
    if values["client_order_id"]:
        order["client_order_id"] = values["client_order_id"]
    decision: Decision | None = None
    result: OrderResult | None = None
    error: str | None = None
    reasons: list[str] = []
    try:
        if field(form, "action") == "submit":
            result = await view.ib.orders.submit(**order)  # a question waits on Orders (compliance.status)
        else:
            decision = await view.ib.orders.check(**order)
            values["client_order_id"] = decision.client_order_id
    except ValidationFailed as exc:
        error, reasons = f"{exc.message}", error_lines(exc)
    except ComplianceBlocked as exc:
        error, reasons = f"blocked: {exc.message}", error_lines(exc)
        decision = getattr(exc, "decision", None)
    except IbkrError as exc:
        error, reasons = f"{exc.code}: {exc.message}", error_lines(exc)
    return render(request, "ticket.html", view, form=values, decision=decision, result=result, error=error,
                  reasons=reasons)


@guarded("trader")
@on_view
async def acknowledge(request: Request, account: Account, form: FormData, view: View) -> Response:
    chosen = [str(v) for v in form.getlist("disclosure") if isinstance(v, str)]
    try:
        done = await view.ib.compliance.acknowledge(account.owner_user_id, chosen)
        flash(request, "ok", f"acknowledged: {', '.join(a.id for a in done.acknowledged) or 'nothing'}",
              [f"still missing: {m}" for m in done.missing_acknowledgments])
    except IbkrError as exc:
        flash(request, "error", f"acknowledgment failed: {exc.code}: {exc.message}", error_lines(exc))
    return back(request, "/compliance")


@guarded("trader")
@on_view
async def halt_switch(request: Request, account: Account, form: FormData, view: View) -> Response:
    """Halt or resume, with a reason and the confirmation box ticked."""
    action, reason = field(form, "action"), field(form, "reason")
    if action not in ("halt", "resume"):
        flash(request, "error", "action: halt or resume")
    elif not reason:
        flash(request, "error", "reason: say why (it is kept in the audit log)")
    elif field(form, "confirm") != "yes":
        flash(request, "error", f"confirm: tick the box to {action} trading on {view.conn.id}")
    else:
        try:
            switch = view.ib.trading.halt if action == "halt" else view.ib.trading.resume
            done = await switch(reason, account.username, user_id=account.owner_user_id)
            flash(request, "ok", f"trading on {view.conn.id} is now {'HALTED' if done.halted else 'running'}")
        except IbkrError as exc:
            flash(request, "error", f"{action} failed: {exc.code}: {exc.message}", error_lines(exc))
    return back(request, "/compliance")
