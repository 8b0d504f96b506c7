"""Column types that keep money exact and times aware on every dialect."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine


class RawJson(str):
    """JSON text serialised already (pieces cached by the writer): a JSON column stores it as it is."""


def dump_json(value: Any) -> str:
    """The engines' JSON serialiser: `json.dumps`, except RawJson, which is JSON text already."""
    return value if isinstance(value, RawJson) else json.dumps(value)


class Money(TypeDecorator[Decimal]):
    """NUMERIC on PostgreSQL; exact decimal text on SQLite (which has no decimal type)."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 28, scale: int = 8) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money and quantities must be Decimal, not float")
        number = Decimal(value)
        return format(number, "f") if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).normalize() if dialect.name == "sqlite" else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; UTC on SQLite. Refuses naive datetimes, returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
