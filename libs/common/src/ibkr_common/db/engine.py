"""Engines and sessions. On PostgreSQL every transaction carries the user (`app.user_id`) for RLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ibkr_common.db.types import dump_json


def async_url(url: str) -> str:
    """The asyncio driver URL for a database URL (`postgresql://` → psycopg, `sqlite://` → aiosqlite)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The blocking driver URL for a database URL (used by migrations)."""
    parsed = make_url(async_url(url))
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """True for SQLite URLs."""
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a file-based SQLite database."""
    database = make_url(url).database
    if is_sqlite(url) and database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 5, echo: bool = False, one_sqlite_connection: bool = False
                ) -> AsyncEngine:
    """An async engine for PostgreSQL (psycopg) or SQLite (aiosqlite, WAL, busy timeout).

    `one_sqlite_connection`: on SQLite, every transaction of the process takes turns on one connection.
    SQLite has one writer at a time anyway; a second connection that finds the write lock taken waits in
    SQLite's busy handler, which sleeps in steps of milliseconds, where a wait for the pool's connection
    ends the moment the other transaction does.
    """
    url = async_url(url)
    if is_sqlite(url):
        ensure_sqlite_dir(url)
        pool: dict[str, Any] = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60} if one_sqlite_connection else {}
        # Every transaction ends in its own commit or rollback (engine.begin / session.begin), so the pool's
        # extra rollback on return would only cost SQLite one more trip to aiosqlite's thread.
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, json_serializer=dump_json,
                                     pool_reset_on_return=None, **pool)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                               json_serializer=dump_json)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory with attributes kept after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def user_transaction(
    sessions: async_sessionmaker[AsyncSession], user_id: str
) -> AsyncIterator[AsyncSession]:
    """A transaction in which Row Level Security admits only `user_id`'s rows (PostgreSQL)."""
    async with sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SELECT set_config('app.user_id', :user_id, true)"), {"user_id": user_id})
        yield session


@asynccontextmanager
async def all_users_read_transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A transaction that may read every user's rows of the registry's tables (and no other table's):
    the registry's directory and key rotation. Writes still need `user_transaction`."""
    from ibkr_common.db.rls import SCAN_SETTING

    async with sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text(f"SELECT set_config('{SCAN_SETTING}', 'read', true)"))
        yield session


@asynccontextmanager
async def reading_all_users(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Inside a user's transaction: the statements in the block may also read every user's rows of the
    registry's tables (SELECT only, as in `all_users_read_transaction`); after it, the transaction sees its
    user's rows alone again. For a check that must see across users in the transaction of a write (the
    registry's quarantine of deleted connection ids)."""
    from ibkr_common.db.rls import SCAN_SETTING

    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(text(f"SELECT set_config('{SCAN_SETTING}', 'read', true)"))
    try:
        yield session
    finally:
        if postgres:
            await session.execute(text(f"SELECT set_config('{SCAN_SETTING}', '', true)"))
