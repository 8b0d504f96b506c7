"""`ibkr status`, `account`, `positions`, `orders`, `sync`: what the stack knows, as tables or `--json`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ibkr_client.cli.base import app, resolve_account, run
from ibkr_client.cli.output import EXIT_NO_STACK, ago, duration, money, out, print_json
from ibkr_client.client import IbkrClient
from ibkr_client.errors import IbkrError
from ibkr_contract.paging import MAX_PAGE_SIZE
from ibkr_contract.session import SessionStatusResult
from ibkr_contract.status import ServiceStatus

#: Rows per page on a terminal (the contract's default page is larger).
SCREEN_PAGE_SIZE = 100

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
#: A sync older than this is a warning in `ibkr status`.
STALE_SYNC_S = 300
EXPIRY_WARNING_S = 3600


def warnings_of(session: SessionStatusResult | None, services: dict[str, ServiceStatus | IbkrError],
                now: datetime) -> list[str]:
    """What an operator should look at: the session, services not answering, a stale sync, the halt switch."""
    found = []
    if session is None:
        found.append("session state unknown (session-keeper does not answer)")
    else:
        if not session.authenticated:
            found.append(f"session not authenticated ({session.reason or session.status}): log in to the gateway")
        if session.competing:
            found.append("another login competes for the brokerage session")
        if session.seconds_left is not None and session.seconds_left < EXPIRY_WARNING_S:
            found.append(f"session expires in {duration(session.seconds_left)}")
        if session.in_maintenance:
            found.append(f"inside a maintenance window ({session.maintenance_window}): failures are expected")
    for name, answer in services.items():
        if isinstance(answer, IbkrError):
            found.append(f"{name} does not answer")
    sync = services.get("sync-worker")
    if isinstance(sync, ServiceStatus):
        last = _time(sync.details.get("last_sync_at"))
        if sync.details.get("paused"):
            found.append("syncs are paused (no usable session)")
        elif last is None or (now - last).total_seconds() > STALE_SYNC_S:
            found.append(f"last complete sync: {ago(last, now)}")
    compliance = services.get("compliance")
    if isinstance(compliance, ServiceStatus) and compliance.details.get("halted"):
        found.append("trading is HALTED on this connection (ibkr resume)")
    return found


def _service_json(answer: ServiceStatus | IbkrError) -> dict[str, Any]:
    if isinstance(answer, ServiceStatus):
        return answer.model_dump(mode="json")
    return {"error": answer.code, "message": answer.message}


def _time(value: Any) -> datetime | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if isinstance(value, datetime) else None


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """The session (state, expiry countdown, maintenance), last sync, the halt switch, and which services answer.

    Exits 3 when a service does not answer.
    """

    async def work(ib: IbkrClient) -> int:
        services = await ib.services()
        try:
            session: SessionStatusResult | None = await ib.session.status(timeout=min(ib.timeout, 5.0))
        except IbkrError:
            session = None
        now = datetime.now(UTC)
        warnings = warnings_of(session, services, now)
        sync, compliance = services.get("sync-worker"), services.get("compliance")
        down = [name for name, answer in services.items() if isinstance(answer, IbkrError)]
        if as_json:
            print_json({
                "connection": ib.connection, "nats_url": ib.nats_url,
                "session": session.model_dump(mode="json") if session else None,
                "halted": compliance.details.get("halted") if isinstance(compliance, ServiceStatus) else None,
                "last_sync_at": sync.details.get("last_sync_at") if isinstance(sync, ServiceStatus) else None,
                "accounts": sync.details.get("accounts") if isinstance(sync, ServiceStatus) else None,
                "services": {name: _service_json(answer) for name, answer in services.items()},
                "warnings": warnings,
            })
            return EXIT_NO_STACK if down else 0
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("connection", f"{ib.connection}  ({ib.nats_url})")
        grid.add_row("session", _session_line(session))
        if session is not None:
            grid.add_row("expires", _expiry_line(session))
            grid.add_row("maintenance", _maintenance_line(session))
        grid.add_row("last sync", _sync_line(sync, now))
        halted = compliance.details.get("halted") if isinstance(compliance, ServiceStatus) else None
        grid.add_row("trading", Text("HALTED", style="bold red") if halted else
                     Text("unknown", style="yellow") if halted is None else Text("running", style="green"))
        grid.add_row("warnings", Text("\n".join(warnings), style="yellow") if warnings else Text("none", style="green"))
        out.print(grid)
        table = Table(title="services", title_justify="left")
        for column in ("service", "answers", "version", "up for"):
            table.add_column(column)
        for name, answer in services.items():
            if isinstance(answer, ServiceStatus):
                up = duration((answer.now - answer.started_at).total_seconds())
                table.add_row(name, Text("yes", style="green"), answer.version, up)
            else:
                table.add_row(name, Text("no", style="bold red"), "-", answer.message)
        out.print(table)
        return EXIT_NO_STACK if down else 0

    run(work)


def _session_line(session: SessionStatusResult | None) -> Text:
    if session is None:
        return Text("unknown (session-keeper does not answer)", style="bold red")
    style = "green" if session.authenticated else "bold red"
    reason = f" ({session.reason})" if session.reason and not session.authenticated else ""
    return Text(f"{session.status}{reason}", style=style)


def _expiry_line(session: SessionStatusResult) -> str:
    if session.expires_at is None:
        return "unknown"
    left = f"in {duration(session.seconds_left)}" if session.seconds_left is not None else ""
    return f"{left}, at {session.expires_at:%Y-%m-%d %H:%M} UTC ({session.expiry_basis or 'basis unknown'})"


def _maintenance_line(session: SessionStatusResult) -> str:
    if not session.in_maintenance:
        return "not in a maintenance window"
    ends = f" until {session.maintenance_ends_at:%H:%M} UTC" if session.maintenance_ends_at else ""
    return f"in {session.maintenance_window or 'a window'}{ends}"


def _sync_line(sync: ServiceStatus | IbkrError | None, now: datetime) -> str:
    if not isinstance(sync, ServiceStatus):
        return "unknown (sync-worker does not answer)"
    accounts = ", ".join(sync.details.get("accounts") or []) or "no accounts yet"
    return f"{ago(_time(sync.details.get('last_sync_at')), now)}; accounts {accounts}"


@app.command()
def account(as_json: JsonFlag = False) -> None:
    """The account summary of the last sync (cash, equity, buying power, day trades)."""

    async def work(ib: IbkrClient) -> None:
        view = await ib.account.get(await resolve_account(ib))
        if as_json:
            print_json(view)
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(justify="right")
        for name, value in view.model_dump().items():
            if value is None:
                continue
            grid.add_row(name, _shown(value))
        out.print(grid)

    run(work)


PageSize = Annotated[int, typer.Option("--page-size", "--limit", min=1, max=10_000, help=(
    f"Rows per page; at most {MAX_PAGE_SIZE} are served per page (--limit is its old name)."))]
Cursor = Annotated[str | None, typer.Option("--cursor", help="The next page: the cursor the previous page printed.")]


def _next_page(cursor: str | None) -> None:
    if cursor is not None:
        out.print(Text(f"more: --cursor {cursor}", style="dim"))


@app.command()
def positions(page_size: PageSize = SCREEN_PAGE_SIZE, cursor: Cursor = None, as_json: JsonFlag = False) -> None:
    """Positions of the last sync by symbol, with market value and P&L, one page at a time."""

    async def work(ib: IbkrClient) -> None:
        result = await ib.positions.get(await resolve_account(ib), page_size, cursor=cursor)
        if as_json:
            print_json(result)
            return
        table = Table(title=f"positions of {result.account_id} (synced {ago(result.synced_at)})", title_justify="left")
        for column in ("symbol", "conid", "type", "quantity", "avg price", "market price", "market value",
                       "unrealized P&L", "realized P&L"):
            table.add_column(column, justify="left" if column in ("symbol", "type") else "right")
        total_value, total_unrealized, total_realized = Decimal(0), Decimal(0), Decimal(0)
        for p in result.positions:
            table.add_row(p.symbol or p.description or "-", str(p.conid), p.sec_type or "-", money(p.quantity),
                          money(p.avg_price), money(p.market_price), money(p.market_value), _pnl(p.unrealized_pnl),
                          _pnl(p.realized_pnl))
            total_value += p.market_value or 0
            total_unrealized += p.unrealized_pnl or 0
            total_realized += p.realized_pnl or 0
        if result.positions:
            table.add_section()
            label = "total" if result.next_cursor is None and cursor is None else "page total"
            table.add_row(label, "", "", "", "", "", money(total_value), _pnl(total_unrealized), _pnl(total_realized))
        else:
            table.add_row("no positions", *[""] * 8)
        out.print(table)
        _next_page(result.next_cursor)

    run(work)


def _shown(value: Any) -> str:
    if isinstance(value, Decimal):
        return money(value)
    return ago(value) if isinstance(value, datetime) else str(value)


def _pnl(value: Decimal | None) -> Text:
    if value is None:
        return Text("-")
    return Text(money(value), style="green" if value > 0 else "red" if value < 0 else "")


@app.command()
def orders(
    show_all: Annotated[bool, typer.Option("--all", help="Every order, not only open ones.")] = False,
    status_filter: Annotated[list[str] | None, typer.Option(
        "--status", help="Only these statuses (repeatable).")] = None,
    history: Annotated[bool, typer.Option("--history", help="Show each order's status history.")] = False,
    page_size: PageSize = SCREEN_PAGE_SIZE,
    cursor: Cursor = None,
    as_json: JsonFlag = False,
) -> None:
    """Open orders (or --all, with --history of each status), newest first, one page at a time."""

    async def work(ib: IbkrClient) -> None:
        wanted: Any = status_filter or (None if show_all else "open")
        result = await ib.orders.get(await resolve_account(ib), wanted, page_size, cursor=cursor)
        if as_json:
            print_json(result)
            return
        what = "orders" if show_all or status_filter else "open orders"
        table = Table(title=f"{what} of {result.account_id} (synced {ago(result.synced_at)})", title_justify="left")
        for column in ("order id", "client order id", "symbol", "side", "type", "quantity", "filled", "limit",
                       "stop", "tif", "status"):
            table.add_column(column)
        for o in result.orders:
            table.add_row(o.order_id, o.client_order_id or "-", o.symbol or str(o.conid or "-"), o.side or "-",
                          o.order_type or "-", money(o.quantity), money(o.filled_quantity), money(o.limit_price),
                          money(o.stop_price), o.tif or "-", o.status)
            if history:
                for step in o.status_history:
                    table.add_row("", "", Text(f"  {step.get('at', '')}", style="dim"), "", "", "",
                                  money(_dec(step.get("filled_quantity"))), "", "", "", Text(str(step.get("status")),
                                                                                              style="dim"))
        if not result.orders:
            table.add_row(f"no {what}", *[""] * 10)
        out.print(table)
        _next_page(result.next_cursor)

    run(work)


def _dec(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


@app.command()
def sync(as_json: JsonFlag = False) -> None:
    """Sync the account now, and say what the sync read."""

    async def work(ib: IbkrClient) -> None:
        result = await ib.sync.trigger(await resolve_account(ib))
        if as_json:
            print_json(result)
            return
        out.print(f"synced at {result.synced_at:%Y-%m-%d %H:%M:%S} UTC: {result.positions} positions, "
                  f"{result.orders} orders, {result.events} events, {len(result.problems)} problems")
        for problem in result.problems:
            out.print(Text(f"  {problem.kind}: {problem.message}", style="yellow"))

    run(work)
