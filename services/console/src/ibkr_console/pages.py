"""The pages (GET): Overview, Account, Positions, Orders, Order ticket, Compliance, Audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from ibkr_client.errors import IbkrError
from ibkr_console.auth import page
from ibkr_console.chart import series_from_events, svg
from ibkr_console.context import NotYours, View, gather_quietly, load_view, render
from ibkr_console.paging import Pager
from ibkr_console.users import Account
from ibkr_contract.audit import AuditEvent

#: The session the chart covers: the last hours of stored events.
CHART_HOURS = 12
AUDIT_TAIL = 50
#: Rows per page of the paged lists (each page one `positions.get` / `orders.get`).
POSITIONS_PAGE = 100
OPEN_ORDERS_PAGE = 100
ORDERS_PAGE = 50
NOISY = frozenset({"gateway.call", "session.tickled"})


def _fail(exc: BaseException | None) -> str | None:
    """A read's failure as one line (None when it worked)."""
    if exc is None:
        return None
    if isinstance(exc, IbkrError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _part(value: object) -> tuple[object | None, str | None]:
    if isinstance(value, BaseException):
        return None, _fail(value)
    return value, None


async def _view(request: Request, account: Account, *, full: bool = False) -> View | Response:
    try:
        return await load_view(request, account, full=full)
    except NotYours as exc:
        return PlainTextResponse(str(exc), status_code=403)


@page
async def overview(request: Request, account: Account) -> Response:
    view = await _view(request, account, full=True)
    if not isinstance(view, View):
        return view
    sync = view.services.get("sync-worker")
    last_sync = sync.details.get("last_sync_at") if not isinstance(sync, IbkrError | None) else None
    return render(request, "overview.html", view, last_sync=last_sync, registry=request.app.state.stack.registry_seen)


@page
async def account_page(request: Request, account: Account) -> Response:
    view = await _view(request, account)
    if not isinstance(view, View):
        return view
    if not view.account_id:
        return render(request, "account.html", view, summary=None, status=None, error="no account synced yet")
    since = datetime.now(UTC) - timedelta(hours=CHART_HOURS)
    summary, status, acct_events, pos_events = await gather_quietly(
        view.ib.account.get(view.account_id),
        view.ib.compliance.status(account.owner_user_id, view.account_id),
        view.ib.audit.query(type_prefix="account.updated", account_id=view.account_id, since=since, limit=1000),
        view.ib.audit.query(type_prefix="positions.", account_id=view.account_id, since=since, limit=1000),
    )
    events: list[AuditEvent] = []
    for found in (acct_events, pos_events):
        if not isinstance(found, BaseException):
            events.extend(found.events)
    net, pnl = series_from_events(events)
    summary, summary_error = _part(summary)
    status, status_error = _part(status)
    return render(request, "account.html", view, summary=summary, status=status, chart=svg(net, pnl),
                  error=summary_error or status_error)


@page
async def positions_page(request: Request, account: Account) -> Response:
    view = await _view(request, account)
    if not isinstance(view, View):
        return view
    pager = Pager.of(request)
    result, error = (None, "no account synced yet") if not view.account_id else \
        _part((await gather_quietly(view.ib.positions.get(view.account_id, POSITIONS_PAGE, cursor=pager.cursor)))[0])
    return render(request, "positions.html", view, result=result, error=error, pager=pager)


@page
async def orders_page(request: Request, account: Account) -> Response:
    view = await _view(request, account)
    if not isinstance(view, View):
        return view
    if not view.account_id:
        return render(request, "orders.html", view, open_orders=None, history=None, error="no account synced yet")
    open_pager, pager = Pager.of(request, "open_"), Pager.of(request)
    open_orders, history = await gather_quietly(
        view.ib.orders.get(view.account_id, "open", OPEN_ORDERS_PAGE, cursor=open_pager.cursor),
        view.ib.orders.get(view.account_id, None, ORDERS_PAGE, cursor=pager.cursor),
    )
    open_orders, open_error = _part(open_orders)
    history, history_error = _part(history)
    pending = await view.open_questions()  # every order of the account waiting for an answer, whoever placed it
    return render(request, "orders.html", view, open_orders=open_orders, history=history,
                  error=open_error or history_error, pending=pending, open_pager=open_pager, pager=pager)


@page
async def ticket_page(request: Request, account: Account) -> Response:
    view = await _view(request, account)
    if not isinstance(view, View):
        return view
    return render(request, "ticket.html", view, form={}, decision=None, result=None, error=None)


@page
async def compliance_page(request: Request, account: Account) -> Response:
    view = await _view(request, account)
    if not isinstance(view, View):
        return view
    calls = [view.ib.audit.query(type_prefix="compliance.", conn=view.conn.id, limit=100),
             view.ib.audit.query(type_prefix="trading.", conn=view.conn.id, limit=20)]
    if view.account_id:
        calls.append(view.ib.compliance.status(account.owner_user_id, view.account_id))
    found = await gather_quietly(*calls)
    decisions, decisions_error = _part(found[0])
    switches, _ = _part(found[1])
    status, status_error = _part(found[2]) if len(found) > 2 else (None, "no account synced yet")
    return render(request, "compliance.html", view, decisions=decisions, switches=switches, status=status,
                  error=decisions_error or status_error)


@page
async def audit_page(request: Request, account: Account) -> Response:
    view = await _view(request, account)
    if not isinstance(view, View):
        return view
    everything = bool(request.query_params.get("all"))
    found, error = _part((await gather_quietly(view.ib.audit.query(conn=view.conn.id, limit=AUDIT_TAIL * 4)))[0])
    tail = None
    if found is not None:  # gateway calls and tickles drown the rest unless asked for
        events = [e for e in found.events if everything or e.type not in NOISY]  # type: ignore[attr-defined]
        tail = {"events": events[:AUDIT_TAIL], "everything": everything}
    verified, verify_error = None, None
    if request.query_params.get("verify"):  # a read: the chain walked now, its result shown
        verified, verify_error = _part((await gather_quietly(view.ib.audit.verify()))[0])
    error = error or verify_error
    return render(request, "audit.html", view, tail=tail, error=error, verified=verified, everything=everything)


@page
async def audit_export(request: Request, account: Account) -> Response:
    """Every stored event of the connection as JSON lines, newest first (a download)."""
    view = await _view(request, account)
    if not isinstance(view, View):
        return view
    ib, conn = view.ib, view.conn.id

    async def lines():  # type: ignore[no-untyped-def]
        async for event in ib.audit.export(conn=conn):
            yield json.dumps(event.model_dump(mode="json")) + "\n"

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="audit-{conn}-{stamp}.jsonl"'})


@page
async def events_stream(request: Request, account: Account) -> Response:
    """Server-sent events of the chosen connection (the user's own connections only)."""
    view = await _view(request, account)
    if not isinstance(view, View):
        return view
    return StreamingResponse(request.app.state.hub.listen(view.conn.id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
