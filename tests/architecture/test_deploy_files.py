"""docker-compose.yml and deploy/nats.conf, validated offline (no Docker engine runs here)."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["gateway-bridge", "session-keeper", "sync-worker", "compliance", "audit"]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_declares_every_service_with_a_dockerfile_that_exists():
    compose = _compose()["services"]
    for service in SERVICES:
        assert service in compose
        dockerfile = compose[service]["build"]["dockerfile"]
        assert (ROOT / dockerfile).exists(), dockerfile
        text = (ROOT / dockerfile).read_text()
        assert f"--package=ibkr-{service}" in text
        assert f"ibkr_{service.replace('-', '_')}" in text


def test_each_service_connects_to_nats_as_its_own_user_declared_in_nats_conf():
    compose = _compose()["services"]
    conf = (ROOT / "deploy" / "nats.conf").read_text()
    users = set(re.findall(r"user:\s*([a-z-]+)", conf))
    for service in SERVICES:
        url = compose[service]["environment"]["NATS_URL"]
        user = url.split("//", 1)[1].split(":", 1)[0]
        assert user == service and user in users


def test_only_compliance_may_publish_bridge_order_subjects():
    conf = (ROOT / "deploy" / "nats.conf").read_text()
    blocks = re.split(r"\n\s*\{\s*\n\s*user:", conf)
    owners = [b.split(",", 1)[0].strip() for b in blocks[1:] if "ibkr.*.bridge.orders.>" in b.split("subscribe")[-1]
              or re.search(r"publish:[^}]*ibkr\.\*\.bridge\.orders\.(>|place)", b)]
    assert owners == ["compliance"]


def test_services_use_postgres_in_compose():
    compose = _compose()
    env = compose["services"]["audit"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://ibkr_app:")
