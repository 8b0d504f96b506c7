"""`make run` reads its configuration like the services: environment first, then `.env`, `VITE_` aliases."""

import os

import pytest

from ibkr_common.settings import SettingsError
from ibkr_devstack.config import configured, explicitly_set, load_stack_settings
from ibkr_devstack.state import set_aside_previous_run

PREFIXES = ("IBKR_", "VITE_", "NATS_URL", "DATABASE_URL")


@pytest.fixture(autouse=True)
def no_stack_variables(monkeypatch):
    for name in list(os.environ):
        if name.startswith(PREFIXES):
            monkeypatch.delenv(name)


def test_dotenv_and_vite_aliases_are_read(tmp_path):
    (tmp_path / ".env").write_text(
        "VITE_IBKR_CONNECTION=dotenv\nIBKR_USE_CPSIM=false\nVITE_IBKR_GATEWAY_HOST=gw.internal\n"
        "IBKR_GATEWAY_PORT=5443\nIBKR_DEVSTACK_NATS_PORT=4333\n"
    )
    settings = load_stack_settings(tmp_path, [])
    assert settings.connection == "dotenv"
    assert settings.use_cpsim is False
    assert settings.gateway_url == "https://gw.internal:5443"
    assert settings.devstack_nats_port == 4333
    assert not explicitly_set(settings, "database_url")


def test_the_environment_wins_over_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("IBKR_CONNECTION=dotenv\nDATABASE_URL=sqlite+aiosqlite:///a.db\n")
    monkeypatch.setenv("VITE_IBKR_CONNECTION", "environment")
    settings = load_stack_settings(tmp_path, [])
    assert settings.connection == "environment"
    assert explicitly_set(settings, "database_url")
    assert settings.database_url == "sqlite+aiosqlite:///a.db"


def test_defaults_without_dotenv(tmp_path):
    settings = load_stack_settings(tmp_path, [])
    assert (settings.connection, settings.use_cpsim, settings.devstack_nats_port) == ("paper", True, 4222)


def test_a_bad_value_names_the_variable_and_where_it_was_set(tmp_path):
    (tmp_path / ".env").write_text("VITE_IBKR_GATEWAY_PORT=abc\n")
    with pytest.raises(SettingsError) as info:
        load_stack_settings(tmp_path, [])
    assert "VITE_IBKR_GATEWAY_PORT (in .env):" in info.value.message


def test_a_service_setting_is_checked_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("IBKR_RATE_LIMIT_RPS", "fast")
    with pytest.raises(SettingsError) as info:
        load_stack_settings(tmp_path, ["gateway-bridge"])
    assert "IBKR_RATE_LIMIT_RPS:" in info.value.message
    assert "gateway-bridge" in info.value.message


def test_configured_sees_the_environment_the_alias_and_dotenv(tmp_path, monkeypatch):
    assert not configured(tmp_path, "IBKR_OPTIONS_LEVELS")
    (tmp_path / ".env").write_text("IBKR_OPTIONS_LEVELS=DU1=3\n")
    assert configured(tmp_path, "IBKR_OPTIONS_LEVELS")
    (tmp_path / ".env").write_text("")
    monkeypatch.setenv("VITE_IBKR_OPTIONS_LEVELS", "DU1=3")
    assert configured(tmp_path, "IBKR_OPTIONS_LEVELS")


def test_a_simulator_run_sets_the_last_runs_database_and_stream_aside(tmp_path):
    (tmp_path / "ibkr.db").write_text("first run")
    (tmp_path / "ibkr.db-wal").write_text("wal")
    (tmp_path / "nats" / "jetstream").mkdir(parents=True)
    (tmp_path / "stack.json").write_text("{}")

    assert set_aside_previous_run(tmp_path) is True
    assert not (tmp_path / "ibkr.db").exists() and not (tmp_path / "nats").exists()
    assert (tmp_path / "previous" / "ibkr.db").read_text() == "first run"
    assert (tmp_path / "previous" / "nats" / "jetstream").is_dir()
    assert (tmp_path / "stack.json").exists()  # only the run's state moves
    assert set_aside_previous_run(tmp_path) is False  # nothing new to set aside
