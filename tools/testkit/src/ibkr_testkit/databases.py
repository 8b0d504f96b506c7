"""Per-run PostgreSQL databases, migrated, with a service role that is subject to RLS."""

from __future__ import annotations

import secrets

import psycopg
from sqlalchemy.engine import make_url

from ibkr_common.db.migrate import upgrade
from ibkr_common.db.rls import create_app_role


class DatabaseFactory:
    """Creates databases `ibkr_test_<run>_<name>` and one app role for the run; drops them after."""

    def __init__(self, admin_url: str, names: object) -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql")
        self.names = names
        self.password = secrets.token_hex(12)
        self.created: list[str] = []

    def _admin(self, database: str = "postgres") -> psycopg.Connection:
        url = self.admin_url.set(database=database).render_as_string(hide_password=False)
        return psycopg.connect(url, autocommit=True)

    def admin_url_for(self, name: str) -> str:
        """Superuser URL of one of the run's databases (migrations, fault tests)."""
        database = f"{self.names.database}_{name}"  # type: ignore[attr-defined]
        return self.admin_url.set(drivername="postgresql+psycopg", database=database).render_as_string(
            hide_password=False
        )

    def create(self, name: str) -> str:
        database = f"{self.names.database}_{name}"  # type: ignore[attr-defined]
        role = self.names.app_role  # type: ignore[attr-defined]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
            conn.execute(f'CREATE DATABASE "{database}"')
        self.created.append(database)
        admin_db_url = self.admin_url_for(name)
        upgrade(admin_db_url)
        from sqlalchemy import create_engine

        engine = create_engine(admin_db_url.replace("+psycopg", ""), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            create_app_role(conn, self.password, role)
        engine.dispose()
        return (
            self.admin_url.set(drivername="postgresql+psycopg", database=database, username=role,
                               password=self.password)
            .render_as_string(hide_password=False)
        )

    def drop_all(self) -> None:
        role = self.names.app_role  # type: ignore[attr-defined]
        with self._admin() as conn:
            for database in self.created:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,)
                )
                conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
            try:
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')
            except psycopg.Error:
                pass
