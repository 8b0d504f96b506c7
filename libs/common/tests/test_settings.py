import pytest

from ibkr_common.settings import CommonSettings, SettingsError, load_settings


def test_defaults_match_the_documented_values(monkeypatch):
    for name in ("IBKR_CONNECTION", "IBKR_TICKLE_INTERVAL", "IBKR_GATEWAY_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(CommonSettings, _env_file=None)
    assert settings.connection == "paper"
    assert settings.gateway_port == 5000
    assert settings.tickle_interval_ms == 60_000
    assert settings.sync_interval_ms == 30_000
    assert settings.gateway_url == "https://localhost:5000"


def test_vite_prefixed_names_are_accepted(monkeypatch):
    monkeypatch.setenv("VITE_IBKR_GATEWAY_HOST", "gw.internal")
    monkeypatch.setenv("VITE_ENCRYPTION_KEY", "x" * 40)
    settings = load_settings(CommonSettings, _env_file=None)
    assert settings.gateway_host == "gw.internal"
    assert settings.encryption_key is not None
    assert settings.encryption_key.get_secret_value() == "x" * 40


def test_tickle_interval_at_the_idle_timeout_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("IBKR_TICKLE_INTERVAL", "300000")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "IBKR_TICKLE_INTERVAL" in info.value.message
    assert "300000" in info.value.message


def test_short_encryption_key_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("IBKR_ENCRYPTION_KEY", "short-secret-value")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "IBKR_ENCRYPTION_KEY" in info.value.message
    assert "short-secret-value" not in info.value.message


def test_bad_connection_id_is_refused(monkeypatch):
    monkeypatch.setenv("IBKR_CONNECTION", "Paper Account")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "IBKR_CONNECTION" in info.value.message
