"""docker-compose.yml is valid against the Compose Specification's JSON schema (vendored in data/)."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_docker_compose_yml_follows_the_compose_specification():
    assert _errors(_compose()) == []


@pytest.mark.parametrize(("service", "key", "value"), [
    ("compliance", "depends_on", {"migrate": {"condition": "service_finished"}}),
    ("audit", "healthcheck", {"test": ["CMD", "true"], "interval": 10}),
    ("nats", "restart_policy", "always"),
    ("gateway-bridge", "env_file", [{"required": False}]),
])
def test_the_schema_catches_a_mistake(service, key, value):
    broken = copy.deepcopy(_compose())
    broken["services"][service][key] = value
    assert _errors(broken)
