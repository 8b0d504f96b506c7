"""Two users on PostgreSQL, every user-owned table: neither reads nor changes the other's rows.

Connected as the services' role (no BYPASSRLS) and with the user set the way the services set it
(`user_transaction`: `app.user_id` for the transaction). Rows are built from the table definitions, so a
table added to USER_OWNED_TABLES is covered without touching this test."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, Table, TypeDecorator, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine

from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.models import USER_OWNED_TABLES, Base

pytestmark = pytest.mark.connected
ALICE, BOB = "alice", "bob"
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
_n = itertools.count(1)


def python_type(sql_type: TypeEngine[Any]) -> type:
    """The Python type a column holds (a TypeDecorator's is its implementation's)."""
    inner = sql_type.impl_instance if isinstance(sql_type, TypeDecorator) else sql_type
    return dict if isinstance(inner, JSON) else inner.python_type


def row_of(table: Table, user_id: str) -> dict[str, Any]:
    """A valid row of `table` owned by `user_id`: every column that needs a value gets one of its type."""
    n = next(_n)
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.name == "user_id":
            row["user_id"] = user_id
            continue
        kind = python_type(column.type)
        if column.primary_key and column.autoincrement is not False and kind is int:
            continue
        if kind is str:
            length = getattr(column.type, "length", None) or 64
            row[column.name] = f"{user_id[:1]}{n}"[:length]
        elif kind is bool:
            row[column.name] = False
        elif kind is int:
            row[column.name] = n
        elif kind is Decimal:
            row[column.name] = Decimal("1")
        elif kind is datetime:
            row[column.name] = NOW
        elif kind is date:
            row[column.name] = NOW.date()
        elif kind is bytes:
            row[column.name] = b"x"
        elif kind in (dict, list):
            row[column.name] = kind()
        else:
            raise AssertionError(f"{table.name}.{column.name}: no sample value for {kind}")
    return row


def key_of(table: Table, row: dict[str, Any]) -> Any:
    """A condition that picks `row` out of `table` (its string and integer values)."""
    return [table.c[k] == v for k, v in row.items() if isinstance(v, str | int) and not isinstance(v, bool)]


@pytest.mark.parametrize("name", USER_OWNED_TABLES)
async def test_neither_user_reads_or_changes_the_others_rows(database_url: str, name: str) -> None:
    table = Base.metadata.tables[name]
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    rows = {ALICE: row_of(table, ALICE), BOB: row_of(table, BOB)}
    try:
        for user, row in rows.items():
            async with user_transaction(sessions, user) as s:
                await s.execute(table.insert().values(row))

        for me, other in ((ALICE, BOB), (BOB, ALICE)):
            mine, theirs = key_of(table, rows[me]), key_of(table, rows[other])
            async with user_transaction(sessions, me) as s:
                assert (await s.execute(select(func.count()).select_from(table).where(*mine))).scalar_one() == 1
                assert (await s.execute(select(func.count()).select_from(table).where(*theirs))).scalar_one() == 0
                assert {r.user_id for r in await s.execute(select(table.c.user_id))} == {me}
                changed = await s.execute(table.update().where(*theirs).values(user_id=me))
                assert changed.rowcount == 0
                gone = await s.execute(table.delete().where(*theirs))
                assert gone.rowcount == 0
            with pytest.raises(DBAPIError, match="row-level security"):
                async with user_transaction(sessions, me) as s:  # writing a row in the other's name
                    await s.execute(table.insert().values(row_of(table, other)))
            with pytest.raises(DBAPIError, match="row-level security"):
                async with user_transaction(sessions, me) as s:  # handing one's own row to the other
                    await s.execute(table.update().where(*mine).values(user_id=other))

        for user, row in rows.items():  # each row is still there, unchanged, for its owner
            async with user_transaction(sessions, user) as s:
                found = (await s.execute(select(table).where(*key_of(table, row)))).mappings().one()
            assert found["user_id"] == user
        async with sessions() as s:  # and no user set: nothing at all
            assert (await s.execute(select(func.count()).select_from(table))).scalar_one() == 0
    finally:
        await engine.dispose()
