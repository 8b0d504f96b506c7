"""Statements compiled once and run on the DBAPI cursor, with SQLAlchemy's own bind processing.

A Core statement through a Session costs a few hundred microseconds of SQLAlchemy's bookkeeping per
execution (the unit of work's state machine, the compiled cache lookup, the execution context) for a
few tens of the database's own. On a latency-critical path (compliance's pre-send write) the same
statement is compiled here once per dialect; each execution only runs every parameter through the
bind processor SQLAlchemy would use (the same JSON serializer, the same datetime and numeric forms)
and hands the rows to the driver's `executemany`. The stored values are the ones SQLAlchemy stores:
`tests/test_prepared_statements.py` checks it row by row on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


class PreparedStatement:
    """`statement` (its bind parameters named) compiled for `dialect`; run with `execute`."""

    def __init__(self, dialect: Dialect, statement: ClauseElement, *, column_keys: Sequence[str] | None = None) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect,
                                                       column_keys=list(column_keys) if column_keys else None))
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        escaped = dict(getattr(compiled, "escaped_bind_names", {}) or {})
        self.names: list[str] = list(compiled.positiontup or []) if self.positional else list(compiled.binds)
        self._sql_names = [escaped.get(name, name) for name in self.names]
        self._processors: list[Callable[[Any], Any] | None] = []
        for name in self.names:
            bind_type = compiled.binds[name].type
            self._processors.append(bind_type.dialect_impl(dialect).bind_processor(dialect))

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """One row's parameters in the driver's form; a missing name is a KeyError (never a silent NULL)."""
        processed = [value if process is None else process(value)
                     for value, process in zip((values[name] for name in self.names), self._processors, strict=True)]
        if self.positional:
            return tuple(processed)
        return dict(zip(self._sql_names, processed, strict=True))

    def execute(self, cursor: Any, rows: Iterable[Mapping[str, Any]]) -> int:
        """Run the statement once per row on a DBAPI cursor; returns the rows affected (as the driver says)."""
        params = [self.parameters(row) for row in rows]
        if not params:
            return 0
        if len(params) == 1:
            cursor.execute(self.sql, params[0])
        else:
            cursor.executemany(self.sql, params)
        return int(cursor.rowcount)


def prepared_insert(dialect: Dialect, table: Table, columns: Sequence[str]) -> PreparedStatement:
    """An INSERT of exactly `columns`; the table's other columns must be ones the database fills in
    (an autoincrement key or a server default): a Python-side default would not be applied here."""
    for column in table.columns:
        if column.name in columns:
            continue
        if column.default is not None and not column.primary_key:
            raise ValueError(f"{table.name}.{column.name} has a Python-side default: list it in the columns")
    return PreparedStatement(dialect, insert(table), column_keys=columns)
