"""`ibkr-db upgrade --create-app-role`: what docker-compose's migrate step runs."""

import os
import subprocess
import sys

import psycopg
import pytest
from alembic.script import ScriptDirectory

from ibkr_common.db.migrate import alembic_config

pytestmark = pytest.mark.connected


def test_upgrade_creates_the_service_role_without_rls_bypass(postgres_admin_url, run_names):
    database = f"{run_names.database}_cli"
    admin = postgres_admin_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    url = f"{admin}/{database}"
    role = f"{run_names.app_role}_cli"
    env = {**os.environ, "IBKR_APP_ROLE_PASSWORD": "cli-test-password"}
    try:
        for _ in range(2):  # a second run is a no-op
            done = subprocess.run([sys.executable, "-m", "ibkr_common.db.cli", "upgrade", "--database-url", url,
                                   "--create-app-role", "--app-role", role], env=env, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, done.stderr
            assert f"revision {head_revision()}" in done.stdout
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = %s", (role,))
            assert row.fetchone() == (False, False, True)
            granted = conn.execute("SELECT has_table_privilege(%s, 'ibkr_positions', 'INSERT'), "
                                   "has_table_privilege(%s, 'ibkr_trading_activity_log', 'UPDATE')", (role, role))
            assert granted.fetchone() == (True, False)
    finally:
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_upgrade_creates_the_console_role_with_its_own_table_only(postgres_admin_url, run_names):
    database = f"{run_names.database}_cli_console"
    admin = postgres_admin_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    url = f"{admin}/{database}"
    app, console = f"{run_names.app_role}_cli_app", f"{run_names.app_role}_cli_console"
    env = {**os.environ, "IBKR_APP_ROLE_PASSWORD": "cli-test-password", "IBKR_CONSOLE_ROLE_PASSWORD": "cli-console-pw"}
    try:
        for _ in range(2):  # a second run refreshes the grants the same way
            done = subprocess.run([sys.executable, "-m", "ibkr_common.db.cli", "upgrade", "--database-url", url,
                                   "--create-app-role", "--app-role", app, "--create-console-role",
                                   "--console-role", console], env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = %s",
                               (console,))
            assert row.fetchone() == (False, False, True)
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            reach = {(role, table) for role in (app, console) for table in tables
                     if conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, table)).fetchone()[0]}
        assert {table for role, table in reach if role == console} == {"console_users"}
        assert (app, "console_users") not in reach and (app, "ibkr_orders") in reach
    finally:
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
            for role in (app, console):
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_upgrade_without_the_role_password_says_so(postgres_admin_url):
    env = {k: v for k, v in os.environ.items() if k not in ("IBKR_APP_ROLE_PASSWORD", "IBKR_CONSOLE_ROLE_PASSWORD")}
    done = subprocess.run([sys.executable, "-m", "ibkr_common.db.cli", "upgrade", "--database-url",
                           "sqlite:///:memory:", "--create-app-role"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "IBKR_APP_ROLE_PASSWORD" in done.stderr
    done = subprocess.run([sys.executable, "-m", "ibkr_common.db.cli", "upgrade", "--database-url",
                           "sqlite:///:memory:", "--create-console-role"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "IBKR_CONSOLE_ROLE_PASSWORD: required with --create-console-role" in done.stderr


def head_revision() -> str:
    """The newest migration of the scripts (what an upgrade reaches)."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head
