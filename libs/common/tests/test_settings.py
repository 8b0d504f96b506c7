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


def test_bad_vite_value_names_the_vite_variable_the_user_set(monkeypatch):
    monkeypatch.delenv("IBKR_GATEWAY_PORT", raising=False)
    monkeypatch.setenv("VITE_IBKR_GATEWAY_PORT", "abc")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "VITE_IBKR_GATEWAY_PORT:" in info.value.message
    assert "'abc'" in info.value.message


def test_the_canonical_name_wins_over_its_vite_alias_in_the_message_too(monkeypatch):
    monkeypatch.setenv("IBKR_GATEWAY_PORT", "abc")
    monkeypatch.setenv("VITE_IBKR_GATEWAY_PORT", "5001")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "\n  IBKR_GATEWAY_PORT:" in info.value.message
    assert "VITE_" not in info.value.message


def test_bad_vite_value_in_a_dotenv_file_names_it_and_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv("IBKR_GATEWAY_PORT", raising=False)
    monkeypatch.delenv("VITE_IBKR_GATEWAY_PORT", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text("VITE_IBKR_GATEWAY_PORT=abc\n")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=dotenv)
    assert "VITE_IBKR_GATEWAY_PORT (in .env):" in info.value.message


def test_vite_encryption_key_alias_is_named_without_echoing_it(monkeypatch):
    monkeypatch.delenv("IBKR_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("VITE_IBKR_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("VITE_ENCRYPTION_KEY", "too-short-secret")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "VITE_ENCRYPTION_KEY:" in info.value.message
    assert "too-short-secret" not in info.value.message


def test_missing_ca_file_is_refused_naming_the_variable(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere" / "gateway.pem"
    monkeypatch.setenv("IBKR_GATEWAY_CA_FILE", str(missing))
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "IBKR_GATEWAY_CA_FILE:" in info.value.message
    assert str(missing) in info.value.message


def test_a_directory_is_not_a_ca_file(monkeypatch, tmp_path):
    monkeypatch.setenv("VITE_IBKR_GATEWAY_CA_FILE", str(tmp_path))
    monkeypatch.delenv("IBKR_GATEWAY_CA_FILE", raising=False)
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "VITE_IBKR_GATEWAY_CA_FILE:" in info.value.message


def test_existing_ca_file_is_accepted_and_empty_means_unset(monkeypatch, tmp_path):
    pem = tmp_path / "gateway.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("IBKR_GATEWAY_CA_FILE", str(pem))
    assert load_settings(CommonSettings, _env_file=None).gateway_ca_file == pem
    monkeypatch.setenv("IBKR_GATEWAY_CA_FILE", "")
    assert load_settings(CommonSettings, _env_file=None).gateway_ca_file is None


def test_each_old_encryption_key_must_be_long_enough_and_is_not_echoed(monkeypatch):
    long_key = "k" * 32
    monkeypatch.setenv("IBKR_OLD_ENCRYPTION_KEYS", f"{long_key},short-old-secret")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "IBKR_OLD_ENCRYPTION_KEYS:" in info.value.message
    assert "32 characters" in info.value.message
    assert "short-old-secret" not in info.value.message
    assert long_key not in info.value.message


def test_old_encryption_keys_of_the_right_length_are_accepted(monkeypatch):
    monkeypatch.setenv("IBKR_OLD_ENCRYPTION_KEYS", f"{'a' * 32}, {'b' * 40}")
    assert load_settings(CommonSettings, _env_file=None).old_encryption_keys.startswith("a")


def test_events_stream_covers_every_connection_by_default(monkeypatch):
    monkeypatch.delenv("IBKR_EVENTS_SUBJECTS", raising=False)
    assert load_settings(CommonSettings, _env_file=None).events_subjects == "ibkr.*.events.>"


def test_a_secret_under_a_vite_name_is_accepted_with_a_warning_naming_the_risk(monkeypatch):
    from ibkr_common.settings import vite_secret_warnings

    monkeypatch.delenv("IBKR_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("VITE_ENCRYPTION_KEY", "k" * 40)
    monkeypatch.setenv("VITE_NATS_URL", "nats://audit:hunter2@nats:4222")
    monkeypatch.setenv("VITE_IBKR_GATEWAY_HOST", "gw.internal")
    settings = load_settings(CommonSettings, _env_file=None)
    assert settings.encryption_key is not None
    warnings = vite_secret_warnings(settings, _env_file=None)
    assert len(warnings) == 2, warnings  # the key and the URL with a password; not the gateway host
    key = next(w for w in warnings if w.startswith("VITE_ENCRYPTION_KEY"))
    assert "Vite bundles every VITE_ variable into the browser" in key and "rename it to IBKR_ENCRYPTION_KEY" in key
    assert any(w.startswith("VITE_NATS_URL") and "NATS_URL." in w for w in warnings)
    assert all("k" * 40 not in w and "hunter2" not in w for w in warnings)


def test_secrets_under_their_own_names_and_urls_without_passwords_warn_nothing(monkeypatch):
    from ibkr_common.settings import vite_secret_warnings

    monkeypatch.setenv("IBKR_ENCRYPTION_KEY", "k" * 40)
    monkeypatch.delenv("VITE_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("VITE_NATS_URL", "nats://nats:4222")
    assert vite_secret_warnings(load_settings(CommonSettings, _env_file=None), _env_file=None) == []


@pytest.mark.connected
async def test_each_service_gets_its_own_reply_inbox_prefix(monkeypatch, nats_url):
    from ibkr_common.service import make_broker

    monkeypatch.setenv("IBKR_NATS_INBOX_PREFIX", "_INBOX_sync-worker")
    monkeypatch.setenv("NATS_URL", nats_url)
    settings = load_settings(CommonSettings, _env_file=None)
    assert settings.provision_streams is True
    broker = make_broker(settings, "sync-worker")
    await broker.connect()
    try:
        assert broker.connection.new_inbox().startswith("_INBOX_sync-worker.")
    finally:
        await broker.stop()
    monkeypatch.setenv("IBKR_NATS_INBOX_PREFIX", "_INBOX.everyone")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "IBKR_NATS_INBOX_PREFIX" in info.value.message
