"""`make run`'s encryption key: generated once into .var with mode 0600, only for the registry."""

import os
import stat

import pytest

from ibkr_devstack.keys import KEY_FILE, registry_key, without_keys


@pytest.fixture(autouse=True)
def no_key_variables(monkeypatch):
    for name in list(os.environ):
        if "ENCRYPTION_KEY" in name:
            monkeypatch.delenv(name)


def test_a_key_is_generated_once_private_and_reused(tmp_path):
    var = tmp_path / ".var"
    first = registry_key(tmp_path, var)
    assert first is not None and len(first) >= 32
    assert stat.S_IMODE((var / KEY_FILE).stat().st_mode) == 0o600
    assert registry_key(tmp_path, var) == first  # the next run decrypts what this one stored


@pytest.mark.parametrize("line", ["IBKR_ENCRYPTION_KEY=" + "k" * 40, "VITE_ENCRYPTION_KEY=" + "k" * 40])
def test_a_configured_key_is_left_to_the_registry(tmp_path, line):
    (tmp_path / ".env").write_text(line + "\n")
    assert registry_key(tmp_path, tmp_path / ".var") is None
    assert not (tmp_path / ".var" / KEY_FILE).exists()


def test_other_services_get_no_key_variable():
    env = {"IBKR_ENCRYPTION_KEY": "a", "VITE_ENCRYPTION_KEY": "b", "IBKR_OLD_ENCRYPTION_KEYS": "c",
           "VITE_IBKR_ENCRYPTION_KEY": "d", "NATS_URL": "nats://x"}
    assert without_keys(env) == {"NATS_URL": "nats://x"}
