"""`ibkr-audit export --since ISO [--until ISO] --format jsonl|csv [--output FILE]`.

Reads the audit log at DATABASE_URL (SQLite or PostgreSQL) and writes the stored events with
occurred_at in [since, until), oldest first: one JSON object per line (jsonl), or one CSV row per
event with the envelope as a JSON column.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from datetime import UTC, datetime
from typing import IO

from ibkr_audit.settings import AuditSettings
from ibkr_audit.store import AuditStore
from ibkr_common.db.engine import make_engine
from ibkr_common.settings import SettingsError, load_settings

CSV_COLUMNS = (
    "seq", "event_id", "type", "conn", "environment", "source", "account_id", "user_id", "correlation_id",
    "occurred_at", "stored_at", "hash", "payload",
)


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parser() -> argparse.ArgumentParser:
    """The command line of ibkr-audit."""
    p = argparse.ArgumentParser(prog="ibkr-audit", description="Tools for the ibkr-stack audit log.")
    sub = p.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write stored events to a file (jsonl or csv)")
    export.add_argument("--since", type=_time, required=True, help="ISO time, inclusive (naive = UTC)")
    export.add_argument("--until", type=_time, default=None, help="ISO time, exclusive")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", "-o", default="-", help="file to write (default: standard output)")
    export.add_argument("--database-url", default=None, help="overrides DATABASE_URL")
    return p


async def export(database_url: str, since: datetime, until: datetime | None, fmt: str, out: IO[str]) -> int:
    """Write the events of [since, until) to `out`; returns how many."""
    engine = make_engine(database_url)
    store = AuditStore(engine)
    count = 0
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    try:
        async for event in store.export(since, until):
            data = event.model_dump(mode="json")
            if writer is not None:
                data["payload"] = json.dumps(data["payload"], sort_keys=True, separators=(",", ":"))
                writer.writerow(data)
            else:
                out.write(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
            count += 1
    finally:
        await engine.dispose()
    return count


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `ibkr-audit` command."""
    args = parser().parse_args(argv)
    overrides = {"database_url": args.database_url} if args.database_url else {}
    try:
        settings = load_settings(AuditSettings, **overrides)
    except SettingsError as exc:
        print(f"ibkr-audit: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.output == "-":
        count = asyncio.run(export(settings.database_url, args.since, args.until, args.format, sys.stdout))
    else:
        with open(args.output, "w", newline="", encoding="utf-8") as out:
            count = asyncio.run(export(settings.database_url, args.since, args.until, args.format, out))
    print(f"ibkr-audit: exported {count} events", file=sys.stderr)


if __name__ == "__main__":
    main()
