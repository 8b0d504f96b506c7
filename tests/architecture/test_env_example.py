"""`.env.example` documents every variable of every service (`make env-example` regenerates it)."""

from pathlib import Path

from ibkr_devstack.envdoc import render

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_matches_the_settings_classes():
    assert (ROOT / ".env.example").read_text() == render(), ".env.example is stale: run make env-example"
