"""Credential encryption at rest: AES-256-GCM with a key derived from `IBKR_ENCRYPTION_KEY`.

A value is stored as `v1:<key id>:<base64(nonce || ciphertext+tag)>`. The key id is a short
fingerprint of the derived key, so older keys can stay in the keyring while values are rotated.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

FORMAT_VERSION = "v1"
MIN_PASSPHRASE_LENGTH = 32
_SALT = b"ibkr-stack/credentials/v1"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """The value cannot be decrypted: unknown key, wrong key, or altered data."""


def derive_key(passphrase: str) -> bytes:
    """Derive a 256-bit key from a passphrase with scrypt (n=2**15, r=8, p=1)."""
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise ValueError(f"encryption key must be at least {MIN_PASSPHRASE_LENGTH} characters")
    return Scrypt(salt=_SALT, length=32, n=2**15, r=8, p=1).derive(passphrase.encode())


def key_id(key: bytes) -> str:
    """Short public fingerprint of a derived key."""
    return hashlib.sha256(b"key-id:" + key).hexdigest()[:12]


class CredentialCipher:
    """Encrypts with the current key; decrypts with any key of the keyring."""

    def __init__(self, passphrase: str, old_passphrases: Iterable[str] = ()) -> None:
        current = derive_key(passphrase)
        self.current_key_id = key_id(current)
        self._keys: dict[str, AESGCM] = {self.current_key_id: AESGCM(current)}
        for old in old_passphrases:
            if old:
                derived = derive_key(old)
                self._keys.setdefault(key_id(derived), AESGCM(derived))

    def __repr__(self) -> str:
        return f"CredentialCipher(current_key_id={self.current_key_id!r}, keys={len(self._keys)})"

    def encrypt(self, plaintext: str, associated_data: bytes = b"") -> str:
        """Encrypt `plaintext`; `associated_data` (e.g. the row's user id) is bound to it."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.current_key_id].encrypt(nonce, plaintext.encode(), associated_data or None)
        token = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{FORMAT_VERSION}:{self.current_key_id}:{token}"

    def decrypt(self, value: str, associated_data: bytes = b"") -> str:
        """Decrypt a value made by `encrypt`; raise DecryptionError rather than return garbage."""
        _version, kid, token = self._split(value)
        cipher = self._keys.get(kid)
        if cipher is None:
            raise DecryptionError(f"no key with id {kid} in the keyring (rotated out, or wrong key)")
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (ValueError, TypeError) as exc:
            raise DecryptionError("ciphertext is not valid base64") from exc
        if len(raw) <= _NONCE_BYTES:
            raise DecryptionError("ciphertext is too short")
        try:
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], associated_data or None)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext was altered or belongs to other associated data") from exc
        return plain.decode()

    def needs_rotation(self, value: str) -> bool:
        """True when `value` was encrypted with a key other than the current one."""
        return self._split(value)[1] != self.current_key_id

    def rotate(self, value: str, associated_data: bytes = b"") -> str:
        """Re-encrypt `value` under the current key."""
        return self.encrypt(self.decrypt(value, associated_data), associated_data)

    @staticmethod
    def _split(value: str) -> tuple[str, str, str]:
        parts = value.split(":", 2)
        if len(parts) != 3 or parts[0] != FORMAT_VERSION:
            raise DecryptionError("not an encrypted value of a known format")
        return parts[0], parts[1], parts[2]
