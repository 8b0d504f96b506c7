"""How `ibkr` writes: rich tables and colour on a terminal (plain text otherwise), JSON for `--json`, one
line on stderr for every failure, and the exit codes."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from ibkr_client.errors import (
    ComplianceBlocked,
    Forbidden,
    IbkrError,
    NoReply,
    NotFound,
    RequestTimeout,
    ServiceNotRunning,
    StackNotFound,
    StackUnavailable,
    ValidationFailed,
)
from ibkr_contract.orders import Decision, Reason
from ibkr_contract.types import jsonable

#: Exit codes of `ibkr` (README, `ibkr --help`).
EXIT_OK = 0
EXIT_ERROR = 1  # the stack answered with an error not listed below
EXIT_USAGE = 2  # a bad argument or a request the stack refused as invalid (VALIDATION_ERROR)
EXIT_NO_STACK = 3  # no stack found, NATS unreachable, or a service not running
EXIT_TIMEOUT = 4  # no answer in time (or the stack's TIMEOUT)
EXIT_REFUSED = 5  # the order was refused: blocked, halted, wrong environment, rejected, or its question declined
EXIT_UNANSWERED = 6  # IBKR asked a question nobody answered (not a terminal and no --confirm for it)
EXIT_BROKEN = 7  # `audit verify` found the chain broken
EXIT_NOT_FOUND = 8  # the account, order or position is not known
EXIT_FORBIDDEN = 9  # the user does not own the connection (FORBIDDEN)
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 the stack answered with another error; 2 bad argument; 3 no stack (or a service not "
    "running); 4 timeout; 5 order refused (blocked, halted, rejected, question declined); 6 an IBKR question left "
    "unanswered; 7 audit chain broken; 8 not found; 9 forbidden (not your connection); 130 interrupted."
)

SEVERITY_STYLE = {"block": "bold red", "warn": "yellow", "allow": "green"}


def _width() -> int | None:
    return None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))


out = Console(highlight=False, markup=False, soft_wrap=False, width=_width())
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """Plain JSON on stdout (models and Decimals made JSON-safe, decimals as plain strings)."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else jsonable(value)
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else jsonable(value)
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def fail_line(message: str) -> None:
    """The one line a failure prints on stderr."""
    err.print(Text("ibkr: ", style="bold red") + Text(" ".join(message.split())))


def exit_code_of(exc: IbkrError) -> int:
    """The exit code of a client error."""
    if isinstance(exc, StackNotFound | StackUnavailable | ServiceNotRunning):
        return EXIT_NO_STACK
    if isinstance(exc, NoReply | RequestTimeout):
        return EXIT_TIMEOUT
    if isinstance(exc, ComplianceBlocked):
        return EXIT_REFUSED
    if isinstance(exc, ValidationFailed):
        return EXIT_USAGE
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, Forbidden):
        return EXIT_FORBIDDEN
    return EXIT_ERROR


def describe_error(exc: IbkrError) -> str:
    """One line for people: what failed and, for a refused order, only the reasons that block it."""
    if isinstance(exc, ComplianceBlocked) and exc.decision is not None:
        blocking = exc.decision.blocking() or exc.decision.reasons
        reasons = "; ".join(f"{r.code} ({r.message})" if r.message else r.code for r in blocking)
        return f"order refused ({exc.code}): {reasons}"
    if isinstance(exc, StackNotFound | StackUnavailable | ServiceNotRunning | NoReply):
        return exc.message
    return f"{exc.code}: {exc.message}"


def error_json(exc: IbkrError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": exc.code, "message": exc.message, "details": jsonable(exc.details),
                                   "retryable": exc.retryable}}


def reason_text(reason: Reason) -> Text:
    style = SEVERITY_STYLE.get(reason.severity, "")
    line = Text(f"  {reason.severity:<5} ", style=style)
    line.append(reason.code, style="bold")
    if reason.message:
        line.append(f"  {reason.message}")
    return line


def print_decision(decision: Decision) -> None:
    """The decision, then each reason with its severity."""
    out.print(Text("decision ") + Text(decision.decision, style=SEVERITY_STYLE.get(decision.decision, "")) +
              Text(f"  (regime {decision.regime})" if decision.regime else ""))
    for reason in decision.reasons:
        out.print(reason_text(reason))


def money(value: Decimal | None) -> str:
    """A decimal for a table: plain, grouped by thousands, '-' when absent."""
    if value is None:
        return "-"
    text = format(value, ",f")
    return text


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """`2026-12-07 18:42:29 UTC (12 s ago)`."""
    if when is None:
        return "never"
    now = now or datetime.now(UTC)
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({duration((now - when).total_seconds())} ago)"


def duration(seconds: float) -> str:
    """`3h 05m`, `4m 10s`, `12 s`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d {hours % 24:02d}h"
