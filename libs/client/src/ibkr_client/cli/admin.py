"""`ibkr halt`, `resume`, `disclosures`, `audit verify|export`, `events tail`."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ibkr_client.cli.base import OPTIONS, app, interactive, resolve_account, run, usage_error
from ibkr_client.cli.output import EXIT_BROKEN, err, out, print_json, print_json_line
from ibkr_client.client import IbkrClient
from ibkr_contract.audit import AuditEvent
from ibkr_contract.envelope import EventEnvelope

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", "-r", help="Why (recorded with the change).")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needs --reason).")]

disclosures_app = typer.Typer(help="Disclosures a user must acknowledge before trading.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
events_app = typer.Typer(help="Events of the stack.", no_args_is_help=True)
app.add_typer(disclosures_app, name="disclosures")
app.add_typer(audit_app, name="audit")
app.add_typer(events_app, name="events")


def _switch(halt: bool, reason: str | None, yes: bool, as_json: bool) -> None:
    verb = "halt" if halt else "resume"
    if reason is None:
        if not interactive():
            raise usage_error(f"give --reason: why {verb} trading")
        reason = typer.prompt(f"Reason to {verb} trading").strip()
        if not reason:
            raise usage_error("a reason is required")
    if not yes:
        if not interactive():
            raise usage_error(f"not a terminal: confirm with --yes to {verb} trading")
        what = "Halt new opening orders" if halt else "Resume trading"
        if not typer.confirm(f"{what} on connection {OPTIONS.connection or '(the stack file’s)'}?", default=False):
            err.print("ibkr: nothing changed")
            raise typer.Exit(1)

    async def work(ib: IbkrClient) -> None:
        call = ib.trading.halt if halt else ib.trading.resume
        result = await call(reason, OPTIONS.operator)
        if as_json:
            print_json(result)
        else:
            state = Text("HALTED", style="bold red") if result.halted else Text("running", style="green")
            out.print(Text(f"trading on {ib.connection}: ") + state + Text(f"  (reason: {reason})"))

    run(work)


@app.command()
def halt(reason: ReasonOption = None, yes: YesOption = False, as_json: JsonFlag = False) -> None:
    """Halt new opening orders on this connection (closing orders stay allowed); asks first, with a reason."""
    _switch(True, reason, yes, as_json)


@app.command()
def resume(reason: ReasonOption = None, yes: YesOption = False, as_json: JsonFlag = False) -> None:
    """Resume trading on this connection; asks first, with a reason."""
    _switch(False, reason, yes, as_json)


@disclosures_app.command("list")
def disclosures_list(as_json: JsonFlag = False) -> None:
    """The disclosures required here, and which the user acknowledged."""

    async def work(ib: IbkrClient) -> None:
        status = await ib.compliance.status(OPTIONS.operator, await resolve_account(ib))
        if as_json:
            print_json({"user_id": OPTIONS.operator, "disclosures": status.disclosures,
                        "missing_acknowledgments": status.missing_acknowledgments})
            return
        table = Table(title=f"disclosures for {OPTIONS.operator} ({status.environment})", title_justify="left")
        for column in ("id", "version", "acknowledged", "title"):
            table.add_column(column)
        for d in status.disclosures:
            table.add_row(d.id, d.version, Text("yes", style="green") if d.acknowledged else Text("no", style="red"),
                          d.title)
        out.print(table)

    run(work)


@disclosures_app.command("acknowledge")
def disclosures_acknowledge(
    ids: Annotated[list[str], typer.Argument(help="Disclosure ids (see `ibkr disclosures list`).")],
    as_json: JsonFlag = False,
) -> None:
    """Acknowledge disclosures for the user (their current versions)."""

    async def work(ib: IbkrClient) -> None:
        result = await ib.compliance.acknowledge(OPTIONS.operator, ids)
        if as_json:
            print_json(result)
            return
        for item in result.acknowledged:
            out.print(f"acknowledged {item.id} (version {item.version}) for {OPTIONS.operator}")
        if result.missing_acknowledgments:
            out.print(Text(f"still missing: {', '.join(result.missing_acknowledgments)}", style="yellow"))

    run(work)


@audit_app.command("verify")
def audit_verify(
    from_seq: Annotated[int | None, typer.Option("--from-seq", min=1, help="Start at this sequence number.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Walk the audit log's hash chain. Exits 7 when a row was changed, removed or reordered."""

    async def work(ib: IbkrClient) -> int:
        result = await ib.audit.verify(from_seq)
        if as_json:
            print_json(result)
        elif result.ok:
            out.print(Text("audit chain intact", style="green") +
                      Text(f": {result.events_checked} events checked, last seq {result.last_seq}"))
        else:
            out.print(Text("audit chain BROKEN", style="bold red") +
                      Text(f" at seq {result.first_bad_seq}: {result.problem}"))
        if not result.ok:
            err.print(Text("ibkr: ", style="bold red") + Text(f"audit chain broken at seq {result.first_bad_seq}"))
            return EXIT_BROKEN
        return 0

    run(work)


CSV_COLUMNS = ("seq", "stored_at", "occurred_at", "type", "conn", "environment", "source", "account_id", "user_id",
               "correlation_id", "event_id", "hash", "payload")


@audit_app.command("export")
def audit_export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
    type_prefix: Annotated[str | None, typer.Option("--type", help="Event type prefix (orders, gateway.call).")] = None,
    account_id: Annotated[str | None, typer.Option("--for-account", help="Only this account's events.")] = None,
    since: Annotated[datetime | None, typer.Option("--since", help="occurred_at >= this (RFC 3339).")] = None,
    until: Annotated[datetime | None, typer.Option("--until", help="occurred_at < this (RFC 3339).")] = None,
) -> None:
    """Export stored events, newest first, as JSON lines or CSV (a progress bar on a terminal)."""
    if fmt not in ("jsonl", "csv"):
        raise usage_error(f"--format: {fmt!r} is not jsonl or csv")
    for name, value in (("--since", since), ("--until", until)):
        if value is not None and value.tzinfo is None:
            raise usage_error(f"{name}: give a time zone (e.g. 2026-12-01T00:00:00Z)")

    async def work(ib: IbkrClient) -> None:
        sink: IO[str] = output.open("w", newline="") if output else sys.stdout
        try:
            await _export(ib, sink, fmt, type_prefix=type_prefix, account_id=account_id, since=since, until=until)
        finally:
            if output:
                sink.close()

    run(work)


async def _export(ib: IbkrClient, sink: IO[str], fmt: str, **filters: object) -> None:
    writer = csv.writer(sink) if fmt == "csv" else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    progress = Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=not err.is_terminal, transient=False)
    written = 0
    with progress:
        task = progress.add_task("export", total=None)
        top: int | None = None
        async for event in ib.audit.export(**filters):  # type: ignore[arg-type]
            if top is None:
                top = event.seq
                progress.update(task, total=top)
            _write_event(sink, writer, event)
            written += 1
            progress.update(task, completed=top - event.seq + 1)
        progress.update(task, total=top or 0, completed=top or 0)
    err.print(f"exported {written} events", style="dim") if err.is_terminal else None


def _write_event(sink: IO[str], writer: object, event: AuditEvent) -> None:
    data = event.model_dump(mode="json")
    if writer is None:
        sink.write(json.dumps(data, separators=(",", ":")) + "\n")
        return
    data["payload"] = json.dumps(data["payload"], separators=(",", ":"))
    writer.writerow([data.get(column) for column in CSV_COLUMNS])  # type: ignore[attr-defined]


@events_app.command("tail")
def events_tail(
    types: Annotated[list[str] | None, typer.Option("--type", "-t", help="Event type or area (repeatable).")] = None,
    account_id: Annotated[str | None, typer.Option("--for-account", help="Only this account's events.")] = None,
    durable: Annotated[str | None, typer.Option("--durable", help="A named consumer that resumes where it "
                                                "stopped.")] = None,
    start: Annotated[str, typer.Option("--from", help="new, all, last, or a time (RFC 3339).")] = "new",
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after this many events.")] = None,
    idle: Annotated[float | None, typer.Option("--idle", min=0.1, help="Stop after this many seconds without an "
                                               "event.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON envelope per line.")] = False,
) -> None:
    """Follow events live (Ctrl-C stops), filtered by type and account."""
    begin: str | datetime = start
    if start not in ("new", "all", "last"):
        try:
            begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise usage_error(f"--from: {start!r} is not new, all, last or a time") from None

    async def work(ib: IbkrClient) -> None:
        seen = 0
        async with ib.events(types, account_id, durable, start=begin, idle_timeout=idle) as stream:  # type: ignore[arg-type]
            if not as_json:
                err.print(f"following {', '.join(types or ['every event'])} on {ib.connection} (Ctrl-C stops)",
                          style="dim")
            async for event in stream:
                print_json_line(event) if as_json else out.print(event_line(event))
                seen += 1
                if count is not None and seen >= count:
                    break

    run(work)


def event_line(event: EventEnvelope) -> Text:
    """`18:42:35 orders.filled DU1234567 AAPL BUY 10 filled`: the time, type, account and a short summary."""
    line = Text(f"{event.occurred_at:%H:%M:%S} ", style="dim")
    line.append(f"{event.type:<24}", style="bold")
    line.append(f" {event.account_id or '-':<10} ")
    line.append(summary(event.payload))
    return line


def summary(payload: dict[str, object]) -> str:
    """A few telling fields of a payload."""
    order = payload.get("order") if isinstance(payload.get("order"), dict) else None
    if isinstance(order, dict):
        bits = [order.get(k) for k in ("symbol", "side", "quantity", "order_type", "status")]
        text = " ".join(str(b) for b in bits if b is not None)
        return text + (f" #{order['order_id']}" if order.get("order_id") else "")
    position = payload.get("position")
    if isinstance(position, dict):
        return f"{position.get('symbol') or position.get('conid')} quantity {position.get('quantity')}"
    for keys in (("decision", "client_order_id"), ("status", "reason"), ("method", "path", "status"),
                 ("kind", "message"), ("reason", "changed_by")):
        if keys[0] in payload:
            return " ".join(str(payload.get(k)) for k in keys if payload.get(k) is not None)
    return ", ".join(sorted(payload))[:80]
