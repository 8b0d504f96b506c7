"""Who may connect as a person: user ids and scrypt hashes of their passwords, read from a file.

This is the stand-in for the product's own login: the callout is where a real identity provider plugs in
(an OIDC token in `auth_token` checked instead of a password). No password is kept or logged, only hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>` of `password`."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    found = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                           dklen=len(digest) // 2)
    return hmac.compare_digest(found.hex(), digest)


class UserFile:
    """The users file, read again whenever it changed (so a person can be added without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: float | None = None
        self._users: dict[str, str] = {}

    def users(self) -> dict[str, str]:
        """user_id -> hash, as the file says now."""
        stamp = self.path.stat().st_mtime
        if stamp != self._stamp:
            data = json.loads(self.path.read_text())
            self._users = {str(k): str(v) for k, v in data.get("users", {}).items()}
            self._stamp = stamp
        return self._users

    def authenticate(self, user_id: str | None, password: str | None) -> bool:
        """Whether `user_id` is listed and `password` is theirs."""
        if not user_id or not password:
            return False
        stored = self.users().get(user_id)
        return stored is not None and password_matches(password, stored)
