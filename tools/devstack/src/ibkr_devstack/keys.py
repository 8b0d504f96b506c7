"""The registry's encryption key for `make run`: the configured one, or one generated once and kept in
`.var/encryption.key` (mode 0600), so the usernames stored by an earlier run still decrypt.

Only the registry is given it: the other services' environments are stripped of every key variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ibkr_devstack.config import configured

KEY_FILE = "encryption.key"
#: The variables that carry a key (the current one, earlier ones), under every name the services accept.
KEY_VARIABLES = ("IBKR_ENCRYPTION_KEY", "VITE_IBKR_ENCRYPTION_KEY", "VITE_ENCRYPTION_KEY",
                 "IBKR_OLD_ENCRYPTION_KEYS", "VITE_IBKR_OLD_ENCRYPTION_KEYS")


def registry_key(root: Path, var: Path) -> str | None:
    """None when the user configured a key (environment or `.env`: the registry reads it as it would);
    else the key of `var/encryption.key`, made now (48 random bytes, URL-safe) if there is none."""
    if configured(root, "IBKR_ENCRYPTION_KEY") or configured(root, "ENCRYPTION_KEY"):
        return None
    var.mkdir(parents=True, exist_ok=True)
    path = var / KEY_FILE
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as sink:
            sink.write(secrets.token_urlsafe(48))
    path.chmod(0o600)
    return path.read_text().strip()


def without_keys(env: dict[str, str]) -> dict[str, str]:
    """`env` without any key variable (for every service but the registry)."""
    return {name: value for name, value in env.items() if name not in KEY_VARIABLES}
