"""The database of the production topology checks roles and passwords (scram), and the services' role
owns nothing: the migration job, as the owner, made the tables. The console's role reaches its own table
(console_users) and nothing else; the services' role does not reach it."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ibkr_devstack.prod import ProdStack

pytestmark = [pytest.mark.connected, pytest.mark.e2e, pytest.mark.slow]
APP_ROLE = "ibkr_app"
CONSOLE_ROLE = "ibkr_console"


def _conninfo(prod: ProdStack, user: str, password: str) -> str:
    return make_url(prod.database_url(user, password)).set(drivername="postgresql").render_as_string(False)


def _app(prod: ProdStack) -> str:
    return _conninfo(prod, APP_ROLE, prod.variables["POSTGRES_APP_PASSWORD"])


def _console(prod: ProdStack) -> str:
    return _conninfo(prod, CONSOLE_ROLE, prod.variables["POSTGRES_CONSOLE_PASSWORD"])


def _owner(prod: ProdStack) -> str:
    return _conninfo(prod, "postgres", prod.variables["POSTGRES_PASSWORD"])


def test_the_services_connect_as_the_app_role(prod: ProdStack) -> None:
    for service in ("session-keeper", "sync-worker", "compliance", "audit"):
        assert make_url(prod.environments[service]["DATABASE_URL"]).username == APP_ROLE, service
        assert prod.environments[service]["IBKR_MIGRATE_ON_START"] == "false"
    assert "DATABASE_URL" not in prod.environments["gateway-bridge"]
    with psycopg.connect(_owner(prod)) as conn:
        users = {row[0] for row in conn.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'ibkr' AND pid <> pg_backend_pid()")}
    assert make_url(prod.environments["console"]["DATABASE_URL"]).username == CONSOLE_ROLE
    assert users == {APP_ROLE, CONSOLE_ROLE}, users


@pytest.mark.parametrize("statement", [
    "DROP TABLE ibkr_trading_activity_log",
    "ALTER TABLE ibkr_orders ADD COLUMN mischief text",
    "TRUNCATE ibkr_trading_activity_log",
    "CREATE TABLE mischief (id int)",
])
def test_the_app_role_may_not_change_the_schema(prod: ProdStack, statement: str) -> None:
    with psycopg.connect(_app(prod)) as conn:
        assert conn.execute("SELECT count(*) FROM ibkr_trading_activity_log").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_the_owner_owns_the_tables(prod: ProdStack) -> None:
    with psycopg.connect(_owner(prod)) as conn:
        rows = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        owners = {row[0] for row in rows}
        role = conn.execute("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = %s",
                            (APP_ROLE,)).fetchone()
        console = conn.execute("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = %s",
                               (CONSOLE_ROLE,)).fetchone()
    assert owners == {"postgres"}
    assert role == (False, False, False)
    assert console == (False, False, False)


@pytest.mark.parametrize("table", ["ibkr_credentials", "ibkr_connection_accounts", "ibkr_connection_tombstones",
                                   "ibkr_orders", "ibkr_positions",
                                   "ibkr_account_info", "ibkr_trading_activity_log", "trading_compliance_log"])
def test_the_console_role_reaches_its_own_table_only(prod: ProdStack, table: str) -> None:
    with psycopg.connect(_console(prod)) as conn:
        assert conn.execute("SELECT count(*) FROM console_users").fetchone() >= (1,)  # the first admin
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT 1 FROM {table} LIMIT 1")


@pytest.mark.parametrize("statement", [
    "DROP TABLE console_users",
    "ALTER TABLE console_users ADD COLUMN mischief text",
    "CREATE TABLE mischief (id int)",
    "DELETE FROM ibkr_orders",
])
def test_the_console_role_may_not_change_the_schema_or_write_elsewhere(prod: ProdStack, statement: str) -> None:
    with psycopg.connect(_console(prod)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_services_role_does_not_reach_the_console_users(prod: ProdStack) -> None:
    with psycopg.connect(_app(prod)) as conn:
        assert conn.execute("SELECT count(*) FROM ibkr_orders").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT password_hash FROM console_users")


@pytest.mark.parametrize("user", [APP_ROLE, CONSOLE_ROLE, "postgres"])
def test_a_wrong_password_is_refused(prod: ProdStack, user: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_conninfo(prod, user, "not-the-password"), connect_timeout=5)


def test_the_app_role_uses_the_registrys_tombstones_under_rls(prod: ProdStack) -> None:
    """The registry (as the services' role) writes and reads `ibkr_connection_tombstones`, a user's rows at a
    time: Row Level Security is on and forced, as on the registry's other tables."""
    with psycopg.connect(_app(prod)) as conn:
        for privilege in ("SELECT", "INSERT", "DELETE"):
            granted = conn.execute("SELECT has_table_privilege(current_user, 'ibkr_connection_tombstones', %s)",
                                   (privilege,)).fetchone()
            assert granted == (True,), privilege
        assert conn.execute("SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                            "WHERE relname = 'ibkr_connection_tombstones'").fetchone() == (True, True)
        assert conn.execute("SELECT count(*) FROM ibkr_connection_tombstones").fetchone() == (0,)  # no user set
