"""Per-user NATS credentials, enforced by a real nats-server through its auth callout.

A nats-server runs with an `auth_callout` block: the authz app (its own static user) and a trusted
service user (`console`, standing for the operator console or a trading app's backend) keep static
credentials; everyone else is asked about. Alice owns connection A, Bob owns B (the registry's events say
so). Alice may ask A's commands and read A's events; the server itself refuses her B's subjects, every
wildcard over connections, the bridge, and everyone else's inbox.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from faststream import TestApp
from ibkr_authz.__main__ import new_issuer
from ibkr_authz.app import build_app
from ibkr_authz.permissions import inbox_prefix
from ibkr_authz.settings import AuthzSettings
from ibkr_authz.users import hash_password

from ibkr_common.streams import events_stream_config
from ibkr_common.subjects import Subjects, all_connections_events
from ibkr_testkit.connections import announce_connection, connection_view
from ibkr_testkit.servers import ManagedProcess, free_port, nats_server_binary, wait_for_port

pytestmark = [pytest.mark.connected]
PASSWORDS = {"alice": "alice-" + secrets.token_hex(8), "bob": "bob-" + secrets.token_hex(8),
             "operator": "op-" + secrets.token_hex(8)}
SERVICE_PASSWORDS = {"authz": secrets.token_hex(12), "console": secrets.token_hex(12)}


def callout_conf(port: int, store: Path, issuer: str) -> str:
    """A nats.conf with static service users and the auth callout for everyone else."""
    return f"""
listen: 127.0.0.1:{port}
jetstream {{ store_dir: "{store}" }}
authorization {{
  users: [
    {{ user: authz, password: "{SERVICE_PASSWORDS['authz']}",
       permissions: {{ publish: ["ibkr_admin.connections.directory"],
                       subscribe: ["$SYS.REQ.USER.AUTH", "ibkr.*.events.connection.>", "_INBOX.>"],
                       allow_responses: true }} }}
    {{ user: console, password: "{SERVICE_PASSWORDS['console']}" }}
  ]
  auth_callout {{ issuer: {issuer}, auth_users: [authz, console] }}
}}
"""


@pytest.fixture(scope="module")
def issuer() -> tuple[str, str]:
    return new_issuer()


@pytest.fixture(scope="module")
def callout_nats(tmp_path_factory: pytest.TempPathFactory, issuer: tuple[str, str]) -> Iterator[str]:
    """A nats-server with the auth callout configured; yields its host:port."""
    workdir = tmp_path_factory.mktemp("callout-nats")
    port = free_port()
    conf = workdir / "nats.conf"
    conf.write_text(callout_conf(port, workdir / "js", issuer[1]))
    proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=(workdir / "nats.log").open("wb"))
    server = ManagedProcess(url=f"nats://127.0.0.1:{port}", proc=proc, workdir=workdir)
    try:
        wait_for_port("127.0.0.1", port, 15, proc)
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


def url(hostport: str, user: str, password: str) -> str:
    return f"nats://{user}:{password}@{hostport}"


async def connect(hostport: str, user: str, password: str, errors: list[str] | None = None,
                  **options: Any) -> nats.NATS:
    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc))

    return await nats.connect(url(hostport, user, password), allow_reconnect=False, connect_timeout=5,
                              error_cb=on_error, **options)


@pytest.fixture(scope="module")
async def stack(callout_nats: str, issuer: tuple[str, str], tmp_path_factory: pytest.TempPathFactory,
                run_names: Any) -> AsyncIterator[dict[str, Any]]:
    """authz running on the callout server, the events stream, and connections A (alice's), B (bob's)."""
    users = tmp_path_factory.mktemp("authz") / "users.json"
    users.write_text(json.dumps({"users": {u: hash_password(p) for u, p in PASSWORDS.items()}}))
    a, b, boot = f"{run_names.conn}-a", f"{run_names.conn}-b", f"{run_names.conn}-boot"
    console = await connect(callout_nats, "console", SERVICE_PASSWORDS["console"])
    await console.jetstream().add_stream(events_stream_config("IBKR_EVENTS", [all_connections_events()]))
    settings = AuthzSettings(nats_url=url(callout_nats, "authz", SERVICE_PASSWORDS["authz"]), connection=boot,
                             user_id="operator", authz_issuer_seed=issuer[0], authz_users_file=users)
    app = build_app(settings)
    async with TestApp(app):
        for conn, owner in ((a, "alice"), (b, "bob")):
            await announce_connection(console, connection_view(conn, user_id=owner, gateway_url="https://127.0.0.1:1"))
        for _ in range(100):
            if a in app.directory and b in app.directory:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
        yield {"a": a, "b": b, "boot": boot, "console": console, "app": app}
    await console.close()


async def serve(console: nats.NATS, subject: str, seen: list[str]) -> None:
    """The console's stand-in for compliance: answers `subject` and notes each request."""

    async def answer(msg: Any) -> None:
        seen.append(msg.subject)
        await msg.respond(b'{"ok": true, "result": {}}')

    await console.subscribe(subject, cb=answer)


async def test_a_user_asks_and_hears_only_on_their_own_connection(callout_nats: str, stack: dict[str, Any]) -> None:
    a, b, console = stack["a"], stack["b"], stack["console"]
    seen: list[str] = []
    for conn in (a, b):
        await serve(console, Subjects(conn).orders_check, seen)
    await console.flush()

    errors: list[str] = []
    alice = await connect(callout_nats, "alice", PASSWORDS["alice"], errors, inbox_prefix=inbox_prefix("alice"))
    try:
        reply = await alice.request(Subjects(a).orders_check, b"{}", timeout=5)
        assert json.loads(reply.data)["ok"] is True
        assert seen == [Subjects(a).orders_check]

        heard_a: list[str] = []
        heard_b: list[str] = []
        await alice.subscribe(Subjects(a).events_all, cb=noter(heard_a))
        await alice.subscribe(Subjects(b).events_all, cb=noter(heard_b))
        await alice.flush()
        await eventually(lambda: any(Subjects(b).events_all in e for e in errors), "the subscription refused")
        await console.publish(Subjects(b).event("session.tickled"), b"b")  # B's first, then A's: in order
        await console.publish(Subjects(a).event("session.tickled"), b"a")
        await console.flush()
        await eventually(lambda: bool(heard_a), "A's event")
        await asyncio.sleep(0.2)
        assert heard_a == [Subjects(a).event("session.tickled")]
        assert heard_b == []
        assert any("permissions violation for subscription" in e.lower() and Subjects(b).events_all in e
                   for e in errors), errors

        await alice.publish(Subjects(b).orders_check, b"{}")  # B's command: the server drops it
        await alice.publish(Subjects(a).bridge("orders.place"), b"{}")  # the bridge: nobody's but compliance's
        await alice.request(Subjects(a).orders_check, b"{}", timeout=5)  # sent after them, so arrives after them
        assert seen == [Subjects(a).orders_check] * 2, "a request of alice's reached B's service"
        await eventually(lambda: len([e for e in errors if "permissions violation for publish" in e.lower()]) >= 2,
                         "both publishes refused")
        lowered = [e.lower() for e in errors]
        assert any("permissions violation for publish" in e and Subjects(b).orders_check in e for e in lowered)
        assert any("permissions violation for publish" in e and ".bridge.orders.place" in e for e in lowered)
    finally:
        await alice.close()


async def eventually(check: Any, what: str, timeout: float = 10.0) -> None:
    """Wait until `check()` is true (the server's errors and deliveries arrive asynchronously)."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not seen within {timeout} s: {what}")


def noter(into: list[str]) -> Any:
    """A subscription callback that notes each message's subject in `into`."""

    async def note(msg: Any) -> None:
        into.append(msg.subject)

    return note


@pytest.mark.parametrize("subject", ["ibkr.*.events.>", ">", "_INBOX.>", f"{inbox_prefix('bob')}.>"])
async def test_no_wildcard_over_connections_or_other_inboxes(callout_nats: str, stack: dict[str, Any],
                                                             subject: str) -> None:
    errors: list[str] = []
    alice = await connect(callout_nats, "alice", PASSWORDS["alice"], errors, inbox_prefix=inbox_prefix("alice"))
    heard: list[str] = []
    try:
        await alice.subscribe(subject, cb=noter(heard))
        await alice.flush()
        await eventually(lambda: any("permissions violation for subscription" in e.lower() for e in errors),
                         "the subscription refused")
        await stack["console"].publish(Subjects(stack["b"]).event("session.tickled"), b"b")
        await stack["console"].publish(f"{inbox_prefix('bob')}.x", b"bob's reply")
        await stack["console"].flush()
        await asyncio.sleep(0.3)
    finally:
        await alice.close()
    assert heard == []
    assert any("permissions violation for subscription" in e.lower() for e in errors), errors


async def test_bob_has_his_connection_and_the_operator_the_bootstrap(callout_nats: str, stack: dict[str, Any]) -> None:
    grants = {g.user_id: g for g in stack["app"].callout.granted}
    assert grants["alice"].connections == (stack["a"],)
    bob = await connect(callout_nats, "bob", PASSWORDS["bob"], inbox_prefix=inbox_prefix("bob"))
    await bob.close()
    grants = {g.user_id: g for g in stack["app"].callout.granted}
    assert grants["bob"].connections == (stack["b"],)
    assert all(stack["a"] not in s for s in (*grants["bob"].publish, *grants["bob"].subscribe))
    operator = await connect(callout_nats, "operator", PASSWORDS["operator"], inbox_prefix=inbox_prefix("operator"))
    await operator.close()
    grants = {g.user_id: g for g in stack["app"].callout.granted}
    assert grants["operator"].connections == (stack["boot"],)  # IBKR_USER_ID owns the bootstrap connection


@pytest.mark.parametrize(("user", "password"),
                         [("alice", "wrong"), ("mallory", "anything"), ("bob", PASSWORDS["alice"])],
                         ids=["wrong-password", "unknown-user", "another-users-password"])
async def test_a_wrong_password_or_unknown_user_is_refused(callout_nats: str, stack: dict[str, Any],
                                                           user: str, password: str) -> None:
    with pytest.raises(Exception, match="Authorization Violation"):
        await connect(callout_nats, user, password)


async def test_the_trusted_service_user_keeps_its_static_credentials(callout_nats: str, stack: dict[str, Any]) -> None:
    console = stack["console"]
    reply_seen: list[str] = []
    await serve(console, Subjects(stack["b"]).orders_get, reply_seen)
    await console.flush()
    reply = await console.request(Subjects(stack["b"]).orders_get, b"{}", timeout=5)
    assert json.loads(reply.data)["ok"] is True and reply_seen == [Subjects(stack["b"]).orders_get]
    assert "console" not in {g.user_id for g in stack["app"].callout.granted}  # never asked about
