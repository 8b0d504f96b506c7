"""Nothing secret is stored: values under secret-looking keys are masked before an event is stored.

Audit refuses to keep plaintext credentials, cookies, tokens or session ids even when a producer
puts them in an event by mistake. The value of any payload key whose name (lower case, `-` and `_`
removed) contains one of `SECRET_KEY_PARTS` is replaced by `REDACTED`; booleans and nulls are kept
(`password_set: true` says nothing secret). Free text is passed through `ibkr_common.logs.redact`,
which masks `password=...`, `token: ...` and the like. Each masked event is counted.
"""

from __future__ import annotations

from typing import Any

from ibkr_common.logs import redact as redact_text

REDACTED = "[REDACTED]"
SECRET_KEY_PARTS = (
    "password", "passwd", "passphrase", "secret", "token", "cookie", "authorization", "apikey",
    "sessionid", "session_id", "privatekey", "credential", "jsessionid", "xsrf", "csrf", "bearer",
)


def is_secret_key(key: str) -> bool:
    """True for key names that announce a secret."""
    norm = key.lower().replace("-", "").replace("_", "")
    return any(part.replace("_", "") in norm for part in SECRET_KEY_PARTS)


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
