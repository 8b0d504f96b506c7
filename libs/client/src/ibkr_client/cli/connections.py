"""`ibkr connections …`: the setup flow of a connection (create, verify, settings, acknowledge) and its upkeep.

Each command acts for `--user` (the connection's owner). The connection id is an argument, so the global
`--connection` (which connection the other commands talk to) is not needed here. The username is asked
for when not given (`--username` or IBKR_USERNAME), and it is never printed: the registry never returns it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from ibkr_client.cli.base import OPTIONS, app, interactive, run, usage_error
from ibkr_client.cli.output import out, print_json
from ibkr_client.client import IbkrClient
from ibkr_contract.connections import ConnectionView, VerifyResult

connections_app = typer.Typer(help="Connections (IBKR logins): set up, verify, configure, remove.",
                              no_args_is_help=True)
app.add_typer(connections_app, name="connections")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ConnArg = Annotated[str, typer.Argument(help="Connection id (a-z, 0-9, -; up to 32).")]
STATE_STYLE = {"enabled": "green", "verified": "yellow", "unverified": "red", "disabled": "red"}


def _environment_text(environment: str) -> Text:
    return Text(environment.upper(), style="bold white on red" if environment == "live" else "bold black on cyan")


def _show(view: ConnectionView) -> None:
    line = Text(f"{view.connection} ") + _environment_text(view.environment) + Text("  ")
    line += Text(view.state, style=STATE_STYLE.get(view.state, ""))
    line += Text(f"  gateway {view.gateway.url}" + ("  (bootstrap)" if view.bootstrap else ""))
    out.print(line)
    if view.accounts:
        table = Table(title_justify="left", box=None)
        for column in ("account", "title", "type", "options level", "live enabled"):
            table.add_column(column)
        for a in view.accounts:
            table.add_row(a.account_id, a.title or "", a.account_type or "", str(a.options_level),
                          "yes" if a.live_enabled else "no")
        out.print(table)
    if view.missing_disclosures:
        out.print(Text(f"disclosures to acknowledge: {', '.join(view.missing_disclosures)}", style="yellow"))


def _username(given: str | None) -> str:
    if given:
        return given
    if not interactive():
        raise usage_error("give the IBKR username with --username (or IBKR_USERNAME)")
    value: str = typer.prompt("IBKR username").strip()
    if not value:
        raise usage_error("a username is required")
    return value


@connections_app.command("list")
def list_connections(as_json: JsonFlag = False) -> None:
    """The connections the user owns."""

    async def work(ib: IbkrClient) -> None:
        views = await ib.connections.list(user_id=OPTIONS.operator)
        if as_json:
            print_json({"connections": views})
            return
        if not views:
            out.print(f"no connections for {OPTIONS.operator}")
        for view in views:
            _show(view)

    run(work)


@connections_app.command("get")
def get_connection(connection: ConnArg, as_json: JsonFlag = False) -> None:
    """One connection."""

    async def work(ib: IbkrClient) -> None:
        view = await ib.connections.get(connection, user_id=OPTIONS.operator)
        print_json(view) if as_json else _show(view)

    run(work)


@connections_app.command("create")
def create_connection(
    connection: ConnArg,
    environment: Annotated[str, typer.Option("--environment", "-e", help="paper or live.")],
    host: Annotated[str, typer.Option("--host", help="The gateway's host.")],
    port: Annotated[int, typer.Option("--port", help="The gateway's port.")],
    username: Annotated[str | None, typer.Option("--username", envvar="IBKR_USERNAME",
                                                 help="IBKR username (asked for when not given).")] = None,
    no_ssl: Annotated[bool, typer.Option("--no-ssl", help="Plain HTTP to the gateway.")] = False,
    ca_file: Annotated[Path | None, typer.Option("--ca-file", exists=True, dir_okay=False,
                                                 help="PEM certificate to verify the gateway with.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Steps 1-2: register a connection (it starts disabled; verify and acknowledge next)."""
    if environment not in ("paper", "live"):
        raise usage_error(f"--environment must be paper or live, not {environment!r}")
    env: Literal["paper", "live"] = "live" if environment == "live" else "paper"
    name = _username(username)
    ca_pem = ca_file.read_text() if ca_file else None

    async def work(ib: IbkrClient) -> None:
        view = await ib.connections.create(connection, user_id=OPTIONS.operator, environment=env, host=host,
                                           port=port, username=name, ssl=not no_ssl, ca_pem=ca_pem)
        if as_json:
            print_json(view)
            return
        _show(view)
        out.print(f"next: ibkr connections verify {connection}")

    run(work)


@connections_app.command("verify")
def verify_connection(connection: ConnArg, as_json: JsonFlag = False) -> None:
    """Step 3: gateway reachable, authenticated, accounts read back."""

    async def work(ib: IbkrClient) -> int:
        result: VerifyResult = await ib.connections.verify(connection, user_id=OPTIONS.operator)
        if as_json:
            print_json(result)
            return 0 if result.ok else 1
        for check in result.checks:
            mark = Text("ok  ", style="green") if check.ok else Text("FAIL", style="bold red")
            out.print(mark + Text(f" {check.check}" + (f": {check.detail}" if check.detail else "")))
        _show(result.connection)
        return 0 if result.ok else 1

    run(work)


@connections_app.command("settings")
def account_settings(
    connection: ConnArg,
    account: Annotated[str, typer.Option("--account", "-a", help="The account to configure.")],
    options_level: Annotated[int, typer.Option("--options-level", min=0, max=4, help="0 to 4.")] = 0,
    live_enabled: Annotated[bool, typer.Option("--live-enabled/--live-disabled",
                                               help="Allow live orders on this account (live only).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Set one account's options level and live enablement."""

    async def work(ib: IbkrClient) -> None:
        view = await ib.connections.settings(connection, user_id=OPTIONS.operator, accounts=[
            {"account_id": account, "options_level": options_level, "live_enabled": live_enabled}])
        print_json(view) if as_json else _show(view)

    run(work)


@connections_app.command("acknowledge")
def acknowledge(
    connection: ConnArg,
    disclosures: Annotated[list[str], typer.Argument(help="Disclosure ids (see `ibkr disclosures list`).")],
    as_json: JsonFlag = False,
) -> None:
    """Step 4: acknowledge the disclosures the connection's environment needs."""

    async def work(ib: IbkrClient) -> None:
        view = await ib.connections.acknowledge(connection, user_id=OPTIONS.operator, disclosures=disclosures)
        print_json(view) if as_json else _show(view)

    run(work)


@connections_app.command("update")
def update_connection(
    connection: ConnArg,
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port")] = None,
    no_ssl: Annotated[bool, typer.Option("--no-ssl", help="Plain HTTP to the gateway.")] = False,
    username: Annotated[str | None, typer.Option("--username", envvar="IBKR_USERNAME")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change the gateway (all of --host and --port) or the username; the connection needs verifying again."""
    if (host is None) != (port is None):
        raise usage_error("give both --host and --port to change the gateway")
    if host is None and username is None:
        raise usage_error("nothing to change: give --host and --port, or --username")

    async def work(ib: IbkrClient) -> None:
        gateway = {"host": host, "port": port, "ssl": not no_ssl} if host is not None else None
        view = await ib.connections.update(connection, user_id=OPTIONS.operator, gateway=gateway, username=username)
        print_json(view) if as_json else _show(view)

    run(work)


@connections_app.command("delete")
def delete_connection(
    connection: ConnArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove a connection; the services stop serving it."""
    if not yes:
        if not interactive():
            raise usage_error(f"not a terminal: confirm with --yes to delete connection {connection}")
        if not typer.confirm(f"Delete connection {connection}?", default=False):
            raise typer.Exit(1)

    async def work(ib: IbkrClient) -> None:
        result = await ib.connections.delete(connection, user_id=OPTIONS.operator)
        print_json(result) if as_json else out.print(f"deleted {result.connection}")

    run(work)


@connections_app.command("rotate-key")
def rotate_key(as_json: JsonFlag = False) -> None:
    """Re-encrypt every stored credential under the registry's current key (the old keys must still be set)."""

    async def work(ib: IbkrClient) -> int:
        result = await ib.connections.rotate_key()
        if as_json:
            print_json(result)
        else:
            out.print(f"key {result.key_id}: {result.rows} rows, {result.rotated} re-encrypted, "
                      f"{result.already_current} already current, {len(result.failed)} failed")
            for failure in result.failed:
                out.print(Text(f"  {failure.get('connection')} ({failure.get('user_id')}): {failure.get('error')}",
                               style="red"))
        return 1 if result.failed else 0

    run(work)
