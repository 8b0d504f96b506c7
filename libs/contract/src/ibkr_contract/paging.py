"""Keyset paging of long lists (`orders.get`, `positions.get`): an opaque cursor and a bounded page size.

A request without `cursor` asks for the first page; a result's `next_cursor` asks for the next one
and is null on the last page. A cursor holds the sort key of the last item served (never an offset),
so it stays valid while items are added or change: a walk from the first page to a null `next_cursor`
sees every item that existed throughout the walk exactly once. A page holds at most `page_size` items
(at most `MAX_PAGE_SIZE`), and servers end a page early rather than let its items pass
`MAX_PAGE_BYTES` of JSON, so every page fits well below NATS's 1 MB default maximum payload.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

#: The most items a page holds; a larger `page_size` (an old `limit` up to 10,000) is served this many at a time.
MAX_PAGE_SIZE = 500
#: Items per page when the request gives no `page_size`: a full page, so a caller from before paging still gets
#: everything in one answer up to 500 items (and `next_cursor` beyond).
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE
#: Servers end a page before its items pass this many bytes of JSON (NATS's default max payload is 1 MiB).
MAX_PAGE_BYTES = 512 * 1024
#: The longest cursor accepted (a cursor is a few dozen characters).
MAX_CURSOR_LENGTH = 512

Key = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def encode_cursor(kind: str, key: Key) -> str:
    """The opaque cursor continuing after the item whose sort key is `key`, for lists of `kind`."""
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, shape: tuple[type, ...], cursor: str) -> Key:
    """The sort key inside a cursor of `kind` (`shape`: the types of its parts); ValueError when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this command returned (malformed)") from None
    if not isinstance(parts, list) or not parts or parts[0] != kind:
        raise ValueError(f"not a cursor of {kind}")
    key = parts[1:]
    if len(key) != len(shape) or any(type(v) is not t for v, t in zip(key, shape, strict=True)):
        raise ValueError(f"not a cursor of {kind} (unexpected key)")
    return tuple(key)


def _with_limit(schema: dict[str, Any]) -> None:
    """Documents `limit`, the deprecated alias of `page_size`, beside it (JSON Schema names one alias only)."""
    schema.setdefault("properties", {})["limit"] = {
        "type": "integer", "minimum": 1, "maximum": 10_000, "deprecated": True, "title": "Limit",
        "description": "Deprecated: the old name of `page_size` (give one or the other)."}


class PageRequest(BaseModel):
    """The paging fields of a request: `cursor` (from the previous page's `next_cursor`) and `page_size`.

    `limit` is accepted as a deprecated alias of `page_size` (its old bound of 10,000 still holds; every
    value is served at most `MAX_PAGE_SIZE` items per page)."""

    model_config = ConfigDict(json_schema_extra=_with_limit)

    #: The list a cursor belongs to, and the types of its key (set by each paged request).
    cursor_kind: ClassVar[str] = ""
    cursor_shape: ClassVar[tuple[type, ...]] = ()

    cursor: str | None = Field(
        None, min_length=1, max_length=MAX_CURSOR_LENGTH,
        description="Opaque: the `next_cursor` of the previous page; omit for the first page.")
    page_size: int = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=10_000, validation_alias=AliasChoices("page_size", "limit"),
        description=f"Items per page (default {DEFAULT_PAGE_SIZE}); at most {MAX_PAGE_SIZE} are served per page. "
                    "`limit` is accepted as a deprecated alias.")

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(cls.cursor_kind, cls.cursor_shape, value)
        return value

    def after(self) -> Key | None:
        """The sort key the page starts after (None for the first page)."""
        return None if self.cursor is None else decode_cursor(self.cursor_kind, self.cursor_shape, self.cursor)

    def size(self) -> int:
        """The number of items this page may hold."""
        return min(self.page_size, MAX_PAGE_SIZE)


def fill_page(rows: Sequence[tuple[Key, M]], size: int, kind: str) -> tuple[list[M], str | None]:
    """Servers' half: `rows` (sort key, item) read in sort order, up to `size + 1` of them, cut to one page
    (by count and by `MAX_PAGE_BYTES` of JSON), with the cursor of the next page (None on the last page)."""
    page: list[M] = []
    used = 0
    for _, item in rows[:size]:
        used += len(item.model_dump_json()) + 1
        if page and used > MAX_PAGE_BYTES:
            break
        page.append(item)
    more = len(rows) > len(page)
    return page, encode_cursor(kind, rows[len(page) - 1][0]) if more and page else None
