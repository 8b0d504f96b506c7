"""Nothing secret is stored: values under secret-looking keys are masked before an event is stored.

Audit refuses to keep plaintext credentials, cookies, tokens or session ids even when a producer
puts them in an event by mistake. The value of any payload key whose name (lower case, `-` and `_`
removed) contains one of `SECRET_KEY_PARTS` is replaced by `REDACTED`; booleans and nulls are kept
(`password_set: true` says nothing secret). Free text is passed through `ibkr_common.logs.redact`,
which masks `password=...`, `token: ...` and the like. Each masked event is counted.
"""

from __future__ import annotations

import re
from typing import Any

from ibkr_common.logs import redact as redact_text

REDACTED = "[REDACTED]"
SECRET_KEY_PARTS = (
    "password", "passwd", "passphrase", "secret", "token", "cookie", "authorization", "apikey",
    "sessionid", "session_id", "privatekey", "credential", "jsessionid", "xsrf", "csrf", "bearer",
)


_KEY_PATTERN = re.compile("|".join(sorted({p.replace("_", "") for p in SECRET_KEY_PARTS})))
#: Words of free text that `ibkr_common.logs.redact` reacts to (lower case): without one, a text is left alone.
_TEXT_HINT = re.compile("passw|secret|token|cookie|authori|api_key|encryption|session")


_KEY_VERDICTS: dict[str, bool] = {}  # payload keys repeat: a dict lookup instead of a regex per key


def is_secret_key(key: str) -> bool:
    """True for key names that announce a secret."""
    verdict = _KEY_VERDICTS.get(key)
    if verdict is None:
        verdict = _KEY_PATTERN.search(key.lower().replace("-", "").replace("_", "")) is not None
        if len(_KEY_VERDICTS) >= 4096:
            _KEY_VERDICTS.clear()
        _KEY_VERDICTS[key] = verdict
    return verdict


def may_hold_secrets(value: Any) -> bool:
    """False when nothing in the parsed JSON value would be masked by `redact_value` (then skip it).

    It looks at the decoded keys and texts, so JSON escapes (`p\\u0061ssword`) hide nothing."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if item is None or item is True or item is False:
                continue  # never masked, and no text to look at
            secret = _KEY_VERDICTS.get(key)
            if secret is None:
                secret = is_secret_key(str(key))
            if secret:
                return True
            kind = type(item)
            if kind is str:
                if len(item) >= 6 and _TEXT_HINT.search(item.lower()) is not None:
                    return True
            elif (kind is dict or kind is list) and may_hold_secrets(item):
                return True
        return False
    if kind is list:
        return any(may_hold_secrets(item) for item in value)
    if kind is str:
        return len(value) >= 6 and _TEXT_HINT.search(value.lower()) is not None
    return False


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
