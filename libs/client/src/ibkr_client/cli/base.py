"""The `ibkr` application, its global options and the way each command runs against the stack."""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from ibkr_client.cli.output import EXIT_CODES_HELP, EXIT_USAGE, fail_line
from ibkr_client.client import DEFAULT_TIMEOUT_S, ORDER_TIMEOUT_S, SYNC_TIMEOUT_S, IbkrClient

app = typer.Typer(
    name="ibkr",
    help="Operate ibkr-stack from a terminal: session, account, positions, orders, trading halt, audit, events.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class Options:
    """The global options, shared by every command."""

    nats_url: str | None = None
    connection: str | None = None
    timeout: float | None = None
    account: str | None = None
    user: str | None = None
    stack_file: Path | None = None
    inbox_prefix: str | None = None
    debug: bool = False

    def client(self) -> IbkrClient:
        """A client; `--timeout`, when given, is the wait for every answer (else reads 10 s, orders 45, syncs 60)."""
        if self.timeout is None:
            return IbkrClient(self.nats_url, self.connection, stack_file=self.stack_file,
                              inbox_prefix=self.inbox_prefix, name="ibkr-cli")
        return IbkrClient(self.nats_url, self.connection, self.timeout, stack_file=self.stack_file,
                          order_timeout=self.timeout, sync_timeout=self.timeout, inbox_prefix=self.inbox_prefix,
                          name="ibkr-cli")

    @property
    def operator(self) -> str:
        """Who is acting: --user, IBKR_USER, else the login name."""
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "operator"


OPTIONS = Options()


@app.callback()
def main_options(
    nats_url: Annotated[str | None, typer.Option("--nats-url", envvar="IBKR_NATS_URL",
                                                 help="NATS of the stack (default: from .var/stack.json).")] = None,
    connection: Annotated[str | None, typer.Option(
        "--connection", "-c", envvar="IBKR_CONNECTION", help="Connection id (default: the stack file's, else paper).",
    )] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.1, help=f"Seconds to wait for any answer (default {DEFAULT_TIMEOUT_S:g} for reads, "
        f"{ORDER_TIMEOUT_S:g} for orders, {SYNC_TIMEOUT_S:g} for syncs and audit verify).")] = None,
    account: Annotated[str | None, typer.Option("--account", "-a", envvar="IBKR_ACCOUNT",
                                                help="Account id (default: the only account the stack syncs).")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", envvar="IBKR_USER",
                                             help="Who acts (default: your login name).")] = None,
    stack_file: Annotated[Path | None, typer.Option("--stack-file", help="A stack.json to use.")] = None,
    inbox_prefix: Annotated[str | None, typer.Option(
        "--inbox-prefix", envvar="IBKR_NATS_INBOX_PREFIX", help="Reply inbox prefix of your NATS user "
        "(compose's client user: _INBOX_client).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of failures.")] = False,
) -> None:
    """Global options."""
    OPTIONS.nats_url, OPTIONS.connection, OPTIONS.timeout = nats_url, connection, timeout
    OPTIONS.account, OPTIONS.user, OPTIONS.stack_file, OPTIONS.debug = account, user, stack_file, debug
    OPTIONS.inbox_prefix = inbox_prefix


def run(work: Callable[[IbkrClient], Awaitable[int | None]]) -> None:
    """Connect, run `work`, close; a non-zero code it returns becomes the exit code."""

    async def go() -> int | None:
        async with OPTIONS.client() as ib:
            return await work(ib)

    code = asyncio.run(go())
    if code:
        raise typer.Exit(code)


def usage_error(message: str) -> typer.Exit:
    """A bad argument: one line on stderr, exit code 2."""
    fail_line(message)
    return typer.Exit(EXIT_USAGE)


async def resolve_account(ib: IbkrClient) -> str:
    """--account / IBKR_ACCOUNT, else the only account the sync-worker knows."""
    if OPTIONS.account:
        return OPTIONS.account
    status = await ib.service_status("sync-worker")
    accounts = list(status.details.get("accounts") or [])
    if len(accounts) == 1:
        return str(accounts[0])
    known = ", ".join(map(str, accounts)) or "none synced yet"
    raise usage_error(f"give the account with --account (or IBKR_ACCOUNT); the stack knows: {known}")


def interactive() -> bool:
    """Whether a person can answer questions (stdin and stdout are terminals, and IBKR_NO_INPUT is not set)."""
    return os.isatty(0) and os.isatty(1) and not os.environ.get("IBKR_NO_INPUT")
