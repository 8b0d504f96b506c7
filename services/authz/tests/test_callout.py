"""Per-user NATS credentials, enforced by a real nats-server through its auth callout.

On a real nats-server with an `auth_callout` block (conftest.py), Alice owns connection A, Bob owns B.
Alice may ask A's commands and read A's events; the server itself refuses her B's subjects, every wildcard
over connections, the bridge, and everyone else's inbox.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ibkr_authz.permissions import inbox_prefix

from ibkr_common.subjects import Subjects

from .callout_helpers import PASSWORDS, connect, eventually, noter, serve

pytestmark = [pytest.mark.connected]


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


async def test_a_person_who_owns_no_connection_may_publish_nothing(callout_nats: str, stack: dict[str, Any]) -> None:
    """NATS reads an empty allow list as no limit: Carol, who owns nothing, must still be refused everything."""
    console, a = stack["console"], stack["a"]
    seen: list[str] = []
    for subject in (Subjects(a).orders_check, Subjects(a).bridge("orders.place"), "ibkr_admin.connections.list"):
        await serve(console, subject, seen)
    await console.flush()
    errors: list[str] = []
    carol = await connect(callout_nats, "carol", PASSWORDS["carol"], errors, inbox_prefix=inbox_prefix("carol"))
    try:
        assert {g.user_id: g for g in stack["app"].callout.granted}["carol"].connections == ()
        for subject in (Subjects(a).orders_check, Subjects(a).bridge("orders.place"), "ibkr_admin.connections.list"):
            await carol.publish(subject, b"{}", reply=carol.new_inbox())
        await carol.flush()
        await eventually(lambda: len([e for e in errors if "permissions violation for publish" in e.lower()]) == 3,
                         "every publish refused")
    finally:
        await carol.close()
    await console.flush()
    assert seen == []
