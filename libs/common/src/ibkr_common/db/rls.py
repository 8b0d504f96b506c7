"""Row Level Security and append-only guards, applied by the migrations on PostgreSQL and SQLite."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ibkr_common.db.models import APPEND_ONLY_TABLES, USER_OWNED_TABLES

APP_ROLE = "ibkr_app"
#: The operator console's login role: its own table and nothing else (`grant_console_role`).
CONSOLE_ROLE = "ibkr_console"
#: The tables only the console's role reaches (the services' role `ibkr_app` has no right on them).
CONSOLE_TABLES = ("console_users",)
#: The user-owned tables of the first schema (0001); later migrations enable RLS on the tables they add.
INITIAL_USER_OWNED_TABLES = (
    "ibkr_credentials", "ibkr_account_info", "ibkr_positions", "ibkr_orders", "ibkr_session_tracking",
    "ibkr_compliance_acknowledgments", "trading_compliance_log", "ibkr_order_ledger",
)
#: The transaction setting with which the registry reads every user's connections (`connections.directory`,
#: `connections.rotate_key`): see `enable_registry_scan`.
SCAN_SETTING = "app.all_users"


def enable_rls(conn: Connection) -> None:
    """On PostgreSQL: each user-owned table of the first schema admits only rows of `app.user_id`."""
    enable_rls_on(conn, [t for t in INITIAL_USER_OWNED_TABLES if t in USER_OWNED_TABLES])


def enable_registry_scan(conn: Connection, tables: list[str]) -> None:
    """On PostgreSQL: a second, read-only policy on the registry's tables admitting every row in a
    transaction that set `app.all_users` to `read` (the registry's directory and key rotation, which serve
    every user). Writes stay bound to `app.user_id`; a transaction that sets only `app.user_id` still sees
    only that user's rows."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        conn.execute(text(f"DROP POLICY IF EXISTS {table}_registry_scan ON {table}"))
        conn.execute(
            text(
                f"CREATE POLICY {table}_registry_scan ON {table} FOR SELECT "
                f"USING (current_setting('{SCAN_SETTING}', true) = 'read')"
            )
        )


def enable_rls_on(conn: Connection, tables: list[str]) -> None:
    """On PostgreSQL: `tables` admit only rows whose user_id is the transaction's `app.user_id`."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
        conn.execute(text(f"DROP POLICY IF EXISTS {table}_by_user ON {table}"))
        conn.execute(
            text(
                f"CREATE POLICY {table}_by_user ON {table} "
                "USING (user_id = current_setting('app.user_id', true)) "
                "WITH CHECK (user_id = current_setting('app.user_id', true))"
            )
        )


def enable_append_only(conn: Connection) -> None:
    """Refuse UPDATE and DELETE on the audit log, on both dialects."""
    for table in APPEND_ONLY_TABLES:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION ibkr_append_only() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
            conn.execute(
                text(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION ibkr_append_only()"
                )
            )
        elif conn.dialect.name == "sqlite":
            for action in ("UPDATE", "DELETE"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} ON {table} "
                        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                    )
                )


def _existing(conn: Connection, tables: tuple[str, ...]) -> list[str]:
    """The ones of `tables` that exist (a migration before the one adding a table grants too)."""
    return [t for t in tables if conn.execute(text("SELECT to_regclass(:t)"), {"t": f"public.{t}"}).scalar()]


def grant_app_role(conn: Connection, role: str = APP_ROLE) -> None:
    """Grant the service role what it needs: no UPDATE/DELETE on append-only tables, nothing of the console's."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
    conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'))
    conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    for table in APPEND_ONLY_TABLES:
        conn.execute(text(f'REVOKE UPDATE, DELETE ON {table} FROM "{role}"'))
    for table in _existing(conn, CONSOLE_TABLES):
        conn.execute(text(f'REVOKE ALL ON {table} FROM "{role}"'))


def grant_console_role(conn: Connection, role: str = CONSOLE_ROLE) -> None:
    """Grant the console's role its own tables (read and write) and nothing else: no other table, no sequence."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"'))
    conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
    for table in _existing(conn, CONSOLE_TABLES):
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{role}"'))


def _login_role(conn: Connection, password: str, role: str) -> None:
    """Create (or reset the password of) a login role that is neither superuser nor BYPASSRLS."""
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        text(f"{verb} ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB PASSWORD :pw"
             .replace(":pw", "'" + password.replace("'", "''") + "'"))
    )


def create_app_role(conn: Connection, password: str, role: str = APP_ROLE) -> None:
    """Create (or reset) the services' login role, and grant it."""
    _login_role(conn, password, role)
    grant_app_role(conn, role)


def create_console_role(conn: Connection, password: str, role: str = CONSOLE_ROLE) -> None:
    """Create (or reset) the console's login role, and grant it its own tables only."""
    _login_role(conn, password, role)
    grant_console_role(conn, role)


def grant_app_role_if_present(conn: Connection, role: str = APP_ROLE) -> None:
    """Grant the service role when it already exists (migrations run before or after it is made)."""
    if conn.dialect.name != "postgresql":
        return
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
        grant_app_role(conn, role)
