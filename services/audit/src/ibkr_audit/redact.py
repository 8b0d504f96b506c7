"""Nothing secret is stored: values under secret-looking keys are masked before an event is stored.

Audit refuses to keep plaintext credentials, cookies, tokens or session ids even when a producer
puts them in an event by mistake. The value of any payload key whose name (lower case, `-` and `_`
removed) contains one of `SECRET_KEY_PARTS` is replaced by `REDACTED`; booleans and nulls are kept
(`password_set: true` says nothing secret). Free text is passed through `ibkr_common.logs.redact`,
which masks `password=...`, `token: ...` and the like. Each masked event is counted.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ibkr_common.logs import redact as redact_text

REDACTED = "[REDACTED]"
SECRET_KEY_PARTS = (
    "password", "passwd", "passphrase", "secret", "token", "cookie", "authorization", "apikey",
    "sessionid", "session_id", "privatekey", "credential", "jsessionid", "xsrf", "csrf", "bearer",
)


_KEY_PATTERN = re.compile("|".join(sorted({p.replace("_", "") for p in SECRET_KEY_PARTS})))
#: Cheap first look at the raw message: without any of these (or a JSON escape) nothing can be masked.
_HINTS = (
    b"pass", b"secret", b"encryption", b"token", b"cookie", b"authori", b"apikey", b"api_key", b"api-key",
    b"session", b"private", b"credential", b"xsrf", b"csrf", b"bearer", b"\\u",
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True for key names that announce a secret."""
    return _KEY_PATTERN.search(key.lower().replace("-", "").replace("_", "")) is not None


_HINT_PATTERN = re.compile(b"|".join(re.escape(h) for h in _HINTS))


def may_hold_secrets(raw: bytes) -> bool:
    """False when the raw JSON has no word that redaction reacts to (then it can be skipped)."""
    return _HINT_PATTERN.search(raw.lower()) is not None


def redact_value(value: Any) -> tuple[Any, int]:
    """A copy of a JSON value with secrets masked, and how many values were masked."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        count = 0
        for key, item in value.items():
            if is_secret_key(str(key)) and item is not None and not isinstance(item, bool):
                out[key] = REDACTED
                count += 1
            else:
                out[key], n = redact_value(item)
                count += n
        return out, count
    if isinstance(value, list):
        items = []
        count = 0
        for item in value:
            masked, n = redact_value(item)
            items.append(masked)
            count += n
        return items, count
    if isinstance(value, str) and len(value) >= 6:
        masked_text = redact_text(value)
        if masked_text != value:
            return masked_text, 1
    return value, 0
