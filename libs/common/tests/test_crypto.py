import pytest

from ibkr_common.crypto import CredentialCipher, DecryptionError

KEY_A = "a" * 32 + "-first-passphrase"
KEY_B = "b" * 32 + "-second-passphrase"


def test_round_trip_with_random_nonces():
    cipher = CredentialCipher(KEY_A)
    one, two = cipher.encrypt("hunter2"), cipher.encrypt("hunter2")
    assert one != two
    assert "hunter2" not in one
    assert cipher.decrypt(one) == cipher.decrypt(two) == "hunter2"


def test_wrong_key_raises_a_clear_error():
    value = CredentialCipher(KEY_A).encrypt("s3cret")
    with pytest.raises(DecryptionError, match="no key"):
        CredentialCipher(KEY_B).decrypt(value)


def test_tampered_ciphertext_raises():
    cipher = CredentialCipher(KEY_A)
    value = cipher.encrypt("s3cret")
    head, token = value.rsplit(":", 1)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(f"{head}:{flipped}")


def test_associated_data_binds_the_value_to_its_row():
    cipher = CredentialCipher(KEY_A)
    value = cipher.encrypt("s3cret", b"user-1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(value, b"user-2")


def test_rotation_keeps_old_values_readable_and_reencrypts_them():
    old = CredentialCipher(KEY_A).encrypt("s3cret")
    rotated_cipher = CredentialCipher(KEY_B, old_passphrases=[KEY_A])
    assert rotated_cipher.needs_rotation(old)
    new = rotated_cipher.rotate(old)
    assert not rotated_cipher.needs_rotation(new)
    assert CredentialCipher(KEY_B).decrypt(new) == "s3cret"


def test_short_passphrase_is_refused():
    with pytest.raises(ValueError):
        CredentialCipher("too-short")
