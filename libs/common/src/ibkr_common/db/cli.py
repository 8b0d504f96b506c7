"""`ibkr-db`: run the migrations, and create the services' role that Row Level Security applies to and the
console's role (its own tables only)."""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy import create_engine

from ibkr_common.db.engine import sync_url
from ibkr_common.db.migrate import current_revision, upgrade
from ibkr_common.db.rls import APP_ROLE, CONSOLE_ROLE, create_app_role, create_console_role


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ibkr-db`."""
    parser = argparse.ArgumentParser(prog="ibkr-db", description="ibkr-stack database tasks")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="apply migrations (a second run is a no-op)")
    up.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///.var/ibkr.db"))
    up.add_argument("--create-app-role", action="store_true",
                    help="PostgreSQL: create/refresh the services' login role (password from IBKR_APP_ROLE_PASSWORD)")
    up.add_argument("--app-role", default=APP_ROLE, help=f"name of that role (default {APP_ROLE})")
    up.add_argument("--create-console-role", action="store_true",
                    help="PostgreSQL: create/refresh the console's login role, allowed its own tables only "
                    "(password from IBKR_CONSOLE_ROLE_PASSWORD)")
    up.add_argument("--console-role", default=CONSOLE_ROLE, help=f"name of that role (default {CONSOLE_ROLE})")
    cur = sub.add_parser("current", help="print the database's revision")
    cur.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///.var/ibkr.db"))
    args = parser.parse_args(argv)
    if args.command == "current":
        print(current_revision(args.database_url) or "none")
        return 0
    roles = [(option, variable, create, role) for chosen, option, variable, create, role in (
        (args.create_app_role, "--create-app-role", "IBKR_APP_ROLE_PASSWORD", create_app_role, args.app_role),
        (args.create_console_role, "--create-console-role", "IBKR_CONSOLE_ROLE_PASSWORD", create_console_role,
         args.console_role),
    ) if chosen]
    for option, variable, _create, _role in roles:
        if not os.environ.get(variable, ""):
            print(f"{variable}: required with {option}", file=sys.stderr)
            return 2
    upgrade(args.database_url)
    if roles:
        engine = create_engine(sync_url(args.database_url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for _option, variable, create, role in roles:
                create(conn, os.environ[variable], role)
        engine.dispose()
    print(f"database at revision {current_revision(args.database_url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
