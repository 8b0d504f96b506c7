"""The operator console in the production topology: its own NATS user and database role, healthy; an admin
signs in over HTTP and a page shows the bootstrap connection's data; a viewer's crafted POST is refused; and
nothing it did asked NATS for a subject its user may not use."""

from __future__ import annotations

import json
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from ibkr_console.auth import SESSION_COOKIE
from ibkr_console.context import money
from ibkr_devstack.prod import ProdStack

from .prodkit import ACCOUNT, CONN, connected

pytestmark = [pytest.mark.connected, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]
CONSOLE_ROLE = "ibkr_console"
PAGES = ("/", "/account", "/positions", "/orders", "/ticket", "/compliance", "/audit", "/setup")


class Visitor:
    """A person's HTTP client of the console. The session cookie is Secure, and httpx's cookie jar (like the
    standard library's) sends a Secure cookie over HTTPS only; a browser also sends it to http://127.0.0.1, a
    secure context. So the visitor keeps the cookie itself and sends it back as a browser there does."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
        self.cookie: str | None = None

    def _kept(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            pair = header.split(";", 1)[0]
            if pair.startswith(f"{SESSION_COOKIE}="):
                self.cookie = pair
        self.http.cookies.clear()
        return response

    def _headers(self) -> dict[str, str]:
        return {"cookie": self.cookie} if self.cookie else {}

    def get(self, path: str) -> httpx.Response:
        return self._kept(self.http.get(path, headers=self._headers()))

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._kept(self.http.post(path, data=data, headers=self._headers()))

    def sign_in(self, username: str, password: str) -> httpx.Response:
        token = csrf(self.get("/signin").text)
        return self.post("/signin", {"username": username, "password": password, "csrf": token, "next": "/"})


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def first_admin(prod: ProdStack) -> dict[str, Any]:
    """The first admin the console made at its first start (generated password, a 0600 file in its volume)."""
    path = Path(prod.info()["console_admin_file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    admin: dict[str, Any] = json.loads(path.read_text())
    return admin


def console_url(prod: ProdStack) -> str:
    url = prod.console_url()
    assert url is not None, "no console in docker-compose.yml"
    return url


def test_the_console_runs_as_its_own_users_and_is_healthy(prod: ProdStack) -> None:
    env = prod.environments["console"]
    assert env["NATS_URL"].startswith("nats://console:") and env["IBKR_NATS_INBOX_PREFIX"] == "_INBOX_console"
    assert make_url(env["DATABASE_URL"]).username == CONSOLE_ROLE
    assert env["IBKR_CONSOLE_SECURE_COOKIES"] == "true" and env["IBKR_MIGRATE_ON_START"] == "false"
    ops = prod.http_urls()["console"]
    health = httpx.get(f"{ops}/healthz", timeout=5)
    assert health.status_code == 200 and health.json()["service"] == "console", health.text
    ready = httpx.get(f"{ops}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"nats": "ok", "live_feed": "ok", "database": "ok"}
    metrics = httpx.get(f"{ops}/metrics", timeout=10)
    assert "ibkr_nats_connected 1.0" in metrics.text, metrics.text[:2000]
    signin = httpx.get(f"{console_url(prod)}/signin", timeout=10)
    assert signin.status_code == 200 and 'action="/signin"' in signin.text
    assert httpx.get(f"{console_url(prod)}/account", timeout=10).status_code == 303  # signed out: to /signin


async def test_an_admin_signs_in_over_http_and_sees_the_bootstrap_connections_account(prod: ProdStack) -> None:
    admin = first_admin(prod)
    assert (admin["role"], admin["owner_user_id"]) == ("admin", prod.variables["IBKR_USER_ID"])
    visitor = Visitor(console_url(prod))
    done = visitor.sign_in(admin["username"], admin["password"])
    assert done.status_code == 303, done.text
    cookie = done.headers["set-cookie"].lower()
    assert "; secure" in cookie and "; httponly" in cookie and "samesite=lax" in cookie
    overview = visitor.get(f"/?conn={CONN}")
    assert overview.status_code == 200 and CONN in overview.text and "paper" in overview.text.lower()
    async with connected(prod, "client") as client:
        for _ in range(3):  # the page and the client read the same synced state, unless a sync falls between
            page = visitor.get("/account")
            reply = await client.call("account.get", {"account_id": ACCOUNT})
            assert reply["ok"], reply
            net = money(reply["result"]["net_liquidation"])
            if net in page.text:
                break
    assert page.status_code == 200 and f"Account {ACCOUNT}" in page.text
    assert f'id="net-liquidation">{net}<' in page.text, page.text[:3000]
    for path in PAGES:
        shown = visitor.get(path)
        assert shown.status_code == 200, (path, shown.text[:500])
        assert admin["password"] not in shown.text and prod.variables["CONSOLE_NATS_PASSWORD"] not in shown.text
    assert admin["password"] not in prod.log("console")
    refused = [line for line in prod.log("nats").splitlines() if "Violation" in line and "ibkr-console-" in line]
    assert refused == [], "\n".join(refused)  # every page asked NATS only what the user `console` may


def test_a_viewers_crafted_post_is_refused(prod: ProdStack, tmp_path: Path) -> None:
    """An account added with the console's own command (as an operator would, in its container), then a
    POST crafted by hand with a valid CSRF token: refused by role, and trading stays as it was."""
    password_file = tmp_path / "viewer-password"
    password_file.write_text(secrets.token_urlsafe(18))
    password_file.chmod(0o600)
    added = subprocess.run(
        [sys.executable, "-m", "ibkr_console.users", "add", "prod-viewer", "--role", "viewer",
         "--owner", prod.variables["IBKR_USER_ID"], "--password-file", str(password_file)],
        env=prod.environments["console"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert added.returncode == 0, added.stderr
    visitor = Visitor(console_url(prod))
    assert visitor.sign_in("prod-viewer", password_file.read_text()).status_code == 303
    page = visitor.get("/compliance")
    assert page.status_code == 200 and 'action="/compliance/switch"' not in page.text  # no form for a viewer
    token = csrf(page.text)
    halt = visitor.post("/compliance/switch", {"csrf": token, "action": "halt", "reason": "crafted", "confirm": "yes"})
    assert halt.status_code == 403 and "viewer may not" in halt.text, halt.text
    order = visitor.post("/ticket", {"csrf": token, "action": "submit", "symbol": "AAPL", "side": "BUY",
                                     "quantity": "1", "order_type": "MKT"})
    assert order.status_code == 403, order.text
    switch = visitor.get("/compliance")
    assert 'id="switch-state" class="ok">running<' in switch.text, switch.text[:3000]
