"""`ibkr`: the entry point. Every failure is one line on stderr and a documented exit code (no traceback
unless --debug)."""

from __future__ import annotations

import sys
import traceback

import typer

# The modules register their commands; `ibkr --help` lists them in this order.
from ibkr_client.cli import reads, trade  # noqa: F401

# isort: split
from ibkr_client.cli import admin, compliance, connections  # noqa: F401
from ibkr_client.cli.base import OPTIONS, app
from ibkr_client.cli.output import EXIT_ERROR, EXIT_INTERRUPTED, describe_error, exit_code_of, fail_line
from ibkr_client.errors import IbkrError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run `ibkr` with `argv` (default: the command line); returns (and exits with) the exit code."""
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    try:
        result = command.main(args=args, prog_name="ibkr", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:  # a usage error: a bad option, a missing argument
        context = getattr(exc, "ctx", None)
        where = f" (see `{context.command_path} --help`)" if context is not None else ""
        fail_line(f"{exc.format_message()}{where}")
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        fail_line("interrupted")
        code = EXIT_INTERRUPTED
    except IbkrError as exc:
        if OPTIONS.debug:
            traceback.print_exc()
        fail_line(describe_error(exc))
        code = exit_code_of(exc)
    except Exception as exc:  # one clear line, never a traceback (unless --debug)
        if OPTIONS.debug:
            traceback.print_exc()
        fail_line(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        code = EXIT_ERROR
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
