"""Transactions that run whole in a worker thread: one hop to the thread per transaction.

The asyncio drivers cost a hop (and, with aiosqlite, a thread wake-up) per statement: a transaction
of three inserts and a commit is about 1 ms on SQLite through the async engine, and 0.1 ms as one
blocking function in a thread. Latency-critical writers (compliance's order ledger) use this; the
statements are the same SQLAlchemy ones, on a blocking engine for the same database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ibkr_common.db.engine import ensure_sqlite_dir, is_sqlite, sqlite_pragmas, sync_url
from ibkr_common.db.types import dump_json

T = TypeVar("T")


class ThreadedDatabase:
    """A blocking engine whose transactions run in `workers` threads (one on SQLite: its writers queue
    here instead of sleeping in SQLite's busy handler). On PostgreSQL each transaction carries the user
    for Row Level Security, as `user_transaction` does."""

    def __init__(self, url: str, *, workers: int = 4, name: str = "db", inline: bool = False) -> None:
        blocking_url = sync_url(url)
        self.sqlite = is_sqlite(blocking_url)
        self._inline: sessionmaker[Session] | None = None
        if self.sqlite and inline:
            ensure_sqlite_dir(blocking_url)
            self._inline_engine = create_engine(blocking_url, connect_args={"timeout": 0, "check_same_thread": False},
                                                json_serializer=dump_json, poolclass=StaticPool)
            event.listen(self._inline_engine, "connect", _inline_pragmas)
            self._inline = sessionmaker(self._inline_engine, expire_on_commit=False)
        if self.sqlite:
            ensure_sqlite_dir(blocking_url)
            self.engine: Engine = create_engine(blocking_url, connect_args={"timeout": 30, "check_same_thread": False},
                                                json_serializer=dump_json)
            event.listen(self.engine, "connect", sqlite_pragmas)
            workers = 1
        else:
            self.engine = create_engine(blocking_url, pool_size=workers, max_overflow=0, pool_pre_ping=True,
                                        json_serializer=dump_json)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, user_id: str, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction under `user_id`, committed when it returns (rolled back on error).

        A cancelled caller does not stop a transaction already running: it commits or fails on its own.
        """
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._transaction, user_id, work)

    async def run_now(self, user_id: str, work: Callable[[Session], T]) -> T:
        """`run`, but on SQLite (made with `inline`) at once in the caller's thread when no other writer
        holds the database: a short write then costs no hop to the thread and no wait for the GIL. When
        another writer is busy it goes to the thread as `run` does (which waits for the lock)."""
        return await self._inline_first(lambda: self._inline_transaction(work), self._transaction, user_id, work)

    def _inline_transaction(self, work: Callable[[Session], T]) -> T:
        assert self._inline is not None
        with self._inline() as session, session.begin():
            return work(session)

    async def _inline_first(self, inline: Callable[[], T], threaded: Callable[..., T], *args: Any) -> T:
        """`inline()` when this database writes inline and SQLite's lock is free, else `threaded(*args)`
        in the worker thread (which waits for the lock)."""
        if self._inline is not None:
            try:
                return inline()
            except (OperationalError, self.engine.dialect.loaded_dbapi.OperationalError) as exc:
                if not _busy_text(str(getattr(exc, "orig", None) or exc)):
                    raise
        return await asyncio.get_running_loop().run_in_executor(self._threads, threaded, *args)

    @property
    def dialect(self) -> Dialect:
        """The dialect statements are compiled for (`ibkr_common.db.prepared`)."""
        return self.engine.dialect

    async def run_raw(self, user_id: str, work: Callable[[Any], T], *, now: bool = False) -> T:
        """`work(cursor)` on a DBAPI cursor in one transaction (for `prepared` statements), as `run` does;
        with `now`, as `run_now` does. A unique violation is raised as SQLAlchemy's IntegrityError."""
        if not now:
            return await asyncio.get_running_loop().run_in_executor(
                self._threads, self._raw_transaction, self.engine, user_id, work
            )
        return await self._inline_first(lambda: self._raw_transaction(self._inline_engine, user_id, work),
                                        self._raw_transaction, self.engine, user_id, work)

    def _raw_transaction(self, engine: Engine, user_id: str, work: Callable[[Any], T]) -> T:
        unique = engine.dialect.loaded_dbapi.IntegrityError
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                if not self.sqlite:
                    cursor.execute("SELECT set_config('app.user_id', %s, true)", (user_id,))
                result = work(cursor)
            finally:
                cursor.close()
            connection.commit()
            return result
        except unique as exc:
            connection.rollback()
            raise IntegrityError("raw transaction", None, exc) from exc
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()

    def _transaction(self, user_id: str, work: Callable[[Session], T]) -> T:
        with self._sessions() as session, session.begin():
            if not self.sqlite:
                session.execute(text("SELECT set_config('app.user_id', :user_id, true)"), {"user_id": user_id})
            return work(session)

    def close(self) -> None:
        """Finish the running transactions, then close every connection."""
        self._threads.shutdown(wait=True)
        self.engine.dispose()
        if self._inline is not None:
            self._inline_engine.dispose()


def _inline_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL as everywhere, but never wait for a lock (the caller's loop must not stall: `run` waits
    instead) and never checkpoint here (the worker thread's connection does that)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _busy_text(message: str) -> bool:
    message = message.lower()
    return "locked" in message or "busy" in message
