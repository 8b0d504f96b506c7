"""Invalid configuration stops the service at start, with a message naming the variable."""

import os
import subprocess
import sys

import pytest

from ibkr_common.settings import SettingsError, load_settings
from ibkr_session_keeper.settings import SessionKeeperSettings


def run_keeper(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ibkr_session_keeper"], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("IBKR_TICKLE_INTERVAL", "300000", "below 300000"),
        ("IBKR_GATEWAY_REGION", "mars", "'us', 'eu' or 'asia'"),
        ("IBKR_ON_COMPETING", "fight", "'wait' or 'takeover'"),
    ],
)
def test_invalid_configuration_exits_2_with_a_clear_message(variable: str, value: str, message: str) -> None:
    done = run_keeper(**{variable: value, "NATS_URL": "nats://127.0.0.1:1"})

    assert done.returncode == 2
    assert variable in done.stderr and message in done.stderr and value in done.stderr
    assert "Traceback" not in done.stderr


def test_vite_prefixed_names_are_accepted() -> None:
    settings = load_settings(SessionKeeperSettings, VITE_IBKR_GATEWAY_REGION="asia", VITE_IBKR_ON_COMPETING="takeover")

    assert settings.gateway_region == "asia" and settings.on_competing == "takeover"


def test_a_bad_maintenance_window_names_the_row() -> None:
    with pytest.raises(SettingsError, match=r"IBKR_MAINTENANCE_WINDOWS.*unknown time zone"):
        load_settings(SessionKeeperSettings, IBKR_MAINTENANCE_WINDOWS="us daily 00:00-01:00 Mars/Base")


def test_backoff_maximum_below_the_first_pause_is_refused() -> None:
    with pytest.raises(SettingsError, match="IBKR_REAUTH_BACKOFF_MAX_S"):
        load_settings(SessionKeeperSettings, IBKR_REAUTH_BACKOFF_S="60", IBKR_REAUTH_BACKOFF_MAX_S="10")
