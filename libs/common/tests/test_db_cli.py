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


def test_upgrade_without_the_role_password_says_so(postgres_admin_url):
    env = {k: v for k, v in os.environ.items() if k != "IBKR_APP_ROLE_PASSWORD"}
    done = subprocess.run([sys.executable, "-m", "ibkr_common.db.cli", "upgrade", "--database-url",
                           "sqlite:///:memory:", "--create-app-role"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "IBKR_APP_ROLE_PASSWORD" in done.stderr


def head_revision() -> str:
    """The newest migration of the scripts (what an upgrade reaches)."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head
