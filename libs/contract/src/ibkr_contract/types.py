"""Shared field types of the contract: decimals that always travel as plain strings.

`str(Decimal("1E+6"))` is `"1E+6"`: correct, but not what a caller reading `"1000000"` expects. Every
money, price and quantity field of the contract is `PlainDecimal`, serialised to JSON with
`format(value, "f")`; `jsonable` does the same for free-form dictionaries (event payloads,
`computed`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, PlainSerializer
from pydantic_core import to_jsonable_python


def plain_decimal(value: Decimal) -> str:
    """`Decimal` as a plain decimal string: `1E+6` -> `"1000000"`, `1.50` -> `"1.50"`, never exponent form."""
    if not value.is_finite():
        return str(value)
    text = format(value, "f")
    return "0" if text in ("-0", "-0.0") else text


#: A Decimal that serialises to JSON as a plain decimal string.
PlainDecimal = Annotated[Decimal, PlainSerializer(plain_decimal, return_type=str, when_used="json")]


def jsonable(value: Any) -> Any:
    """Plain JSON values from models, Decimals (plain strings), datetimes (RFC 3339), UUIDs, enums, ..."""
    return to_jsonable_python(_plain_decimals(value))


def _plain_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _plain_decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain_decimals(v) for v in value]
    return value
