"""Paging a long list on a page: the cursor in the URL, links to the next (older) and previous page.

A page's URL carries the cursor it was asked with (`<prefix>cursor`), the cursors of the pages before
it (`<prefix>back`, `~`-separated, so Previous needs no backwards query) and its number
(`<prefix>page`); every other query parameter (connection, account, the other list's cursor) is kept.
Cursors are the stack's opaque `next_cursor`s; a tampered one is refused by the sync-worker and shown
as the page's error.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

SEP = "~"
#: Previous pages remembered in a URL (beyond them Previous leads to the first page).
MAX_BACK = 30


@dataclass(frozen=True)
class Pager:
    """Where one list of a page stands: its cursor, the cursors before it, its number."""

    path: str
    params: tuple[tuple[str, str], ...]
    prefix: str
    cursor: str | None
    back: tuple[str, ...]
    number: int

    @classmethod
    def of(cls, request: Request, prefix: str = "") -> Pager:
        """The pager of the list whose parameters start with `prefix`, from the request's URL."""
        query = request.query_params
        own = {f"{prefix}cursor", f"{prefix}back", f"{prefix}page"}
        cursor = query.get(f"{prefix}cursor") or None
        back = tuple(c for c in (query.get(f"{prefix}back") or "").split(SEP) if c) if cursor else ()
        try:
            number = max(int(query.get(f"{prefix}page") or len(back) + 2), 1) if cursor else 1
        except ValueError:
            number = len(back) + 2
        params = tuple((k, v) for k, v in query.multi_items() if k not in own)
        return cls(request.url.path, params, prefix, cursor, back, number)

    def _url(self, cursor: str | None, back: tuple[str, ...], number: int) -> str:
        params = list(self.params)
        if cursor:
            params += [(f"{self.prefix}cursor", cursor), (f"{self.prefix}page", str(number))]
            if back:
                params.append((f"{self.prefix}back", SEP.join(back[-MAX_BACK:])))
        return self.path + ("?" + urlencode(params) if params else "")

    def next_url(self, next_cursor: str | None) -> str | None:
        """The URL of the page after this one (None on the last page)."""
        if not next_cursor:
            return None
        back = (*self.back, self.cursor) if self.cursor else ()
        return self._url(next_cursor, back, self.number + 1)

    def previous_url(self) -> str | None:
        """The URL of the page before this one (None on the first page)."""
        if self.cursor is None:
            return None
        if not self.back:
            return self._url(None, (), 1)
        return self._url(self.back[-1], self.back[:-1], self.number - 1)

    def first_url(self) -> str:
        return self._url(None, (), 1)
