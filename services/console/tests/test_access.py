"""Sign-in, roles and CSRF on the server, with a real SQLite database (no stack needed: every refusal
happens before the console asks the stack anything)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ibkr_common.db.engine import make_engine
from ibkr_common.db.migrate import upgrade
from ibkr_common.settings import load_settings
from ibkr_console.app import build_app
from ibkr_console.settings import ConsoleSettings
from ibkr_console.users import UserStore, ensure_first_admin

PASSWORD = "correct-horse-battery"


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/console.db"
    upgrade(url)
    return url


@pytest.fixture
def settings(database: str, tmp_path: Path) -> ConsoleSettings:
    return load_settings(ConsoleSettings, _env_file=None, database_url=database, nats_url="nats://127.0.0.1:1",
                         console_secure_cookies=True, console_admin_file=tmp_path / "admin.json")


async def test_passwords_are_argon2_hashes_and_checked(database: str):
    engine = make_engine(database)
    store = UserStore(engine)
    await store.create("alice", PASSWORD, "trader", "owner-a")
    from sqlalchemy import text

    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT password_hash FROM console_users"))).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert (await store.authenticate("alice", PASSWORD)) is not None
    assert await store.authenticate("alice", PASSWORD + "x") is None
    assert await store.authenticate("nobody", PASSWORD) is None
    with pytest.raises(ValueError, match="role"):
        await store.create("bob", PASSWORD, "root", "owner-a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="password"):
        await store.create("bob", "short", "viewer", "owner-a")
    await engine.dispose()


async def test_the_first_admin_is_made_once_with_a_0600_file(database: str, tmp_path: Path):
    engine = make_engine(database)
    store = UserStore(engine)
    path = tmp_path / "var" / "console-admin.json"
    assert await ensure_first_admin(store, path, "admin", "local") is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = json.loads(path.read_text())
    assert written["role"] == "admin" and written["owner_user_id"] == "local" and len(written["password"]) >= 20
    assert (await store.authenticate("admin", written["password"])) is not None
    assert await ensure_first_admin(store, path, "admin", "local") is False
    await engine.dispose()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def test_posts_need_the_role_and_the_csrf_token(settings: ConsoleSettings):
    app = build_app(settings)
    with TestClient(app, base_url="https://console.test") as client:
        admin = json.loads(Path(str(settings.console_admin_file)).read_text())
        client.portal.call(UserStore(app.state.engine).create, "viewer1", PASSWORD, "viewer", "local")
        assert client.get("/ticket", follow_redirects=False).headers["location"].startswith("/signin?next=")
        assert client.post("/signin", data={"username": "viewer1", "password": PASSWORD}).status_code == 403
        signin = _csrf(client.get("/signin").text)  # the sign-in form has its token too
        refused = client.post("/signin", data={"username": "admin", "password": "wrong", "csrf": signin})
        assert refused.status_code == 401 and admin["password"] not in refused.text
        done = client.post("/signin", data={"username": "viewer1", "password": PASSWORD, "next": "//evil.example",
                                            "csrf": signin}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/"  # never an open redirect
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "; secure" in cookie
        page = client.get("/setup")  # renders without the stack (NATS is unreachable here)
        assert page.status_code == 200 and 'action="/setup"' not in page.text  # no wizard form for a viewer
        token = _csrf(page.text)
        for path in ("/ticket", "/compliance/switch", "/compliance/acknowledge", "/positions/close",
                     "/orders/cancel", "/orders/modify", "/orders/answer", "/session/sync",
                     "/session/reauthenticate", "/session/logout", "/setup"):
            crafted = client.post(path, data={"csrf": token, "action": "submit", "step": "environment"})
            assert crafted.status_code == 403 and "viewer may not" in crafted.text, path
            assert client.post(path, data={"action": "submit"}).status_code == 403, path  # and no token
        assert client.post("/signout", data={"csrf": "forged"}).status_code == 403
        assert client.post("/signout", data={"csrf": token}, follow_redirects=False).status_code == 303
        assert client.post("/ticket", data={"csrf": token}).status_code == 401  # signed out
