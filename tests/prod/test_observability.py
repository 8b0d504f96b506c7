"""What operators see of the production topology: every service's /healthz, /readyz and /metrics under its
own least-privilege NATS user, and no secret of the run in any log."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
from ibkr_authz.permissions import inbox_prefix

from ibkr_devstack.prod import ProdStack

from .prodkit import SERVICES, TEST_CONNECTION, connected

SECRET_NAME = re.compile(r"PASSWORD|KEY|SECRET|TOKEN|SEED")


async def test_every_service_serves_health_readiness_and_metrics(prod: ProdStack) -> None:
    person = prod.variables["AUTHZ_PERSON"]
    async with connected(prod, person, inbox=inbox_prefix(person), secret=prod.variables["AUTHZ_PERSON_PASSWORD"]):
        pass  # so authz has answered the auth callout at least once before its metrics are read
    urls = prod.http_urls()
    assert set(urls) == {*SERVICES, "authz", "console"}  # the console's own checks: test_console.py
    for service, url in ((s, u) for s, u in urls.items() if s != "console"):
        health = httpx.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["service"] == service, health.text
        metrics = httpx.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200, service
        assert "ibkr_ready 1.0" in metrics.text, (service, metrics.text[:2000])
        assert "faststream_received_messages_total" in metrics.text, service
    bridge = httpx.get(f"{urls['gateway-bridge']}/readyz", timeout=5).json()
    assert set(bridge["gateway"]) >= {"reachable", "authenticated"}, bridge
    audit = httpx.get(f"{urls['audit']}/metrics", timeout=10).text
    assert re.search(r"^ibkr_audit_lag_events \d", audit, re.MULTILINE), "audit may read its consumer's info"
    keeper = httpx.get(f"{urls['session-keeper']}/metrics", timeout=10).text
    assert re.search(r'^ibkr_session_state\{connection="[a-z0-9-]+",state="\w+"\} 1\.0', keeper, re.MULTILINE)
    refused = [line for line in prod.log("nats").splitlines() if "Violation" in line and TEST_CONNECTION not in line]
    assert refused == [], "\n".join(refused)  # the scrapes asked NATS nothing a service may not


def test_no_secret_of_the_run_in_any_log(prod: ProdStack) -> None:
    secrets = {name: value for name, value in prod.variables.items() if SECRET_NAME.search(name) and len(value) > 8}
    assert {"POSTGRES_APP_PASSWORD", "BRIDGE_NATS_PASSWORD", "IBKR_ENCRYPTION_KEY", "IBKR_AUTHZ_ISSUER_SEED",
            "AUTHZ_NATS_PASSWORD", "AUTHZ_PERSON_PASSWORD"} <= set(secrets)
    logs = {name: prod.log(name) for name in prod.children}
    assert all(logs[service] for service in (*SERVICES, "authz"))
    for name, value in secrets.items():
        for form in {value, quote(value, safe="")}:
            found = [log for log, text in logs.items() if form in text]
            assert not found, f"{name} is in the log of {found}"
