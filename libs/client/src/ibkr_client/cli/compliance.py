"""`ibkr compliance status`: the user's regime, day trades, disclosures, the halt switch with its reason, and
the account's orders waiting for an answer to IBKR's question (whoever placed them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ibkr_client.cli.base import OPTIONS, app, resolve_account, run
from ibkr_client.cli.output import ago, duration, out, print_json
from ibkr_client.client import IbkrClient
from ibkr_contract.compliance import ComplianceStatus, OpenQuestion

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

compliance_app = typer.Typer(help="What compliance holds for the user and the account.", no_args_is_help=True)
app.add_typer(compliance_app, name="compliance")


def order_line(question: OpenQuestion) -> str:
    """`BUY 2 AAPL LMT 1.50 DAY` (a modify says so, with the working order's id)."""
    o = question.order
    parts = [o.side or "?", format(o.quantity, "f") if o.quantity is not None else "?",
             o.symbol or (f"conid {o.conid}" if o.conid else "?"), o.order_type or "?"]
    parts += [format(p, "f") for p in (o.limit_price, o.stop_price) if p is not None]
    if o.tif:
        parts.append(o.tif)
    line = " ".join(parts)
    return f"modify {question.order_id}: {line}" if question.action == "modify" else line


def trading_line(status: ComplianceStatus) -> Text:
    """`running`, or `HALTED: why (by whom, when)`."""
    if not status.halted:
        return Text("running", style="green")
    halt = status.halt
    line = Text("HALTED", style="bold red")
    if halt is not None:
        line.append(f": {halt.reason or 'no reason given'} (by {halt.changed_by or 'unknown'}, "
                    f"{ago(halt.changed_at)})")
    return line


@compliance_app.command("status")
def status(as_json: JsonFlag = False) -> None:
    """Regime, day trades, options level, disclosures, the halt switch (why, who, when) and the open IBKR
    questions of the account; answer one with `ibkr confirm CLIENT_ORDER_ID REPLY_ID` (`--no` declines)."""

    async def work(ib: IbkrClient) -> None:
        found = await ib.compliance.status(OPTIONS.operator, await resolve_account(ib))
        if as_json:
            print_json(found)
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("account", f"{found.account_id} ({found.environment}) for {OPTIONS.operator}")
        grid.add_row("regime", found.regime or "unknown")
        remaining = found.day_trades_remaining
        grid.add_row("day trades", f"used {_or_dash(found.day_trades_used)}, remaining "
                     f"{'unlimited' if remaining == -1 else _or_dash(remaining)}")
        grid.add_row("options level", _or_dash(found.options_level))
        missing = found.missing_acknowledgments
        grid.add_row("disclosures", Text(f"missing: {', '.join(missing)}", style="yellow") if missing
                     else Text("all acknowledged", style="green"))
        grid.add_row("trading", trading_line(found))
        grid.add_row("questions", Text(f"{len(found.questions)} waiting", style="yellow") if found.questions
                     else Text("none waiting", style="green"))
        out.print(grid)
        if not found.questions:
            return
        table = Table(title="IBKR questions waiting for an answer", title_justify="left")
        for column in ("client order id", "reply id", "asked", "order"):
            table.add_column(column, no_wrap=True)
        table.add_column("question")
        now = datetime.now(UTC)
        for q in found.questions:
            table.add_row(q.client_order_id, q.reply_id, f"{duration((now - q.asked_at).total_seconds())} ago",
                          order_line(q),
                          "\n".join(q.messages) or ", ".join(q.message_ids))
        out.print(table)
        if found.questions_truncated:
            out.print(Text("more questions wait than listed here (the oldest are left out)", style="yellow"))
        out.print("answer with: ibkr confirm CLIENT_ORDER_ID REPLY_ID  (add --no to decline)")

    run(work)


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
