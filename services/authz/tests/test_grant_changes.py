"""A person's grant follows the connections they own while their client stays open.

On a real nats-server with the auth callout (conftest.py), people connect as nats-py does by default
(reconnecting on its own) and then call nothing to reconnect. When the registry's events change the set of
connections a person owns, authz has the server close that person's clients (`$SYS.REQ.SERVER.<id>.KICK`,
as the system account user `authz-kick`); the client reconnects and the callout grants the new set:
- a connection registered for Alice after she connected is hers within seconds;
- a connection removed and registered again under the same id by Bob is no longer reachable by Alice's open
  client (commands refused, events no longer delivered), and is reachable by Bob's;
- people whose set did not change are not disconnected.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import nats
import pytest
from ibkr_authz.kick import ClientRef, OpenClients, people_affected
from ibkr_authz.permissions import inbox_prefix

from ibkr_common.connections import Connection
from ibkr_common.subjects import Subjects
from ibkr_contract.connections import GatewaySettings
from ibkr_testkit.connections import announce_connection, connection_view

from .callout_helpers import PASSWORDS, connect, eventually, noter, serve

pytestmark = [pytest.mark.connected]
GRANT_CHANGE_S = 10.0  # nats-py waits reconnect_time_wait (2 s) before reconnecting: "within a few seconds"


@dataclass
class Person:
    """A person's open client, as an application holds it: reconnecting on its own, its drops counted."""

    user: str
    nc: nats.NATS
    errors: list[str] = field(default_factory=list)
    drops: int = 0
    returns: int = 0

    def refused(self, what: Literal["publish", "subscription"], subject: str) -> bool:
        return any(f"permissions violation for {what} to \"{subject}\"" in e.lower() for e in self.errors)


@pytest.fixture
async def people(callout_nats: str) -> AsyncIterator[dict[str, Person]]:
    """Alice, Bob and the operator (owner of the bootstrap connection), each connected once."""
    held: dict[str, Person] = {}
    for user in ("alice", "bob", "operator"):
        person = Person(user, nats.NATS())

        async def dropped(person: Person = person) -> None:
            person.drops += 1

        async def back(person: Person = person) -> None:
            person.returns += 1

        person.nc = await connect(callout_nats, user, PASSWORDS[user], person.errors, allow_reconnect=True,
                                  inbox_prefix=inbox_prefix(user), disconnected_cb=dropped, reconnected_cb=back)
        held[user] = person
    yield held
    for person in held.values():
        await person.nc.close()


async def register(stack: dict[str, Any], conn: str, owner: str,
                   kind: Literal["registered", "removed"] = "registered") -> None:
    """The registry's event for `conn` owned by `owner`; returns once authz's directory holds it."""
    await announce_connection(stack["console"], connection_view(conn, user_id=owner, gateway_url="https://127.0.0.1:1"),
                              kind)
    directory = stack["app"].directory

    def applied() -> bool:
        held = directory.get(conn)
        return held is None if kind == "removed" else held is not None and held.user_id == owner

    await eventually(applied, f"{conn} {kind} for {owner} in authz's directory")


async def back_with_a_new_grant(person: Person) -> None:
    await eventually(lambda: person.returns >= 1 and person.nc.is_connected, f"{person.user}'s client reconnected",
                     GRANT_CHANGE_S)


async def test_a_connection_registered_after_she_connected_is_hers_within_seconds(
        stack: dict[str, Any], people: dict[str, Person]) -> None:
    alice, bob, operator = people["alice"], people["bob"], people["operator"]
    new = f"{stack['a']}-new"
    seen: list[str] = []
    await serve(stack["console"], Subjects(new).orders_check, seen)
    await stack["console"].flush()
    await alice.nc.publish(Subjects(new).orders_check, b"{}", reply=alice.nc.new_inbox())  # not hers yet
    await eventually(lambda: alice.refused("publish", Subjects(new).orders_check), "the publish refused")

    kicked_before, closed_before = len(stack["app"].kicker.kicked), stack["app"].kicker.totals["closed"]
    started = time.monotonic()
    await register(stack, new, "alice")
    await back_with_a_new_grant(alice)
    reply = await alice.nc.request(Subjects(new).orders_check, b"{}", timeout=5)  # nothing called to reconnect
    took = time.monotonic() - started
    assert json.loads(reply.data)["ok"] is True and seen == [Subjects(new).orders_check]
    assert took < GRANT_CHANGE_S, took
    assert (alice.drops, alice.returns) == (1, 1)
    assert (bob.drops, operator.drops) == (0, 0), "someone whose connections did not change was disconnected"
    assert {user for user, _ in stack["app"].kicker.kicked[kicked_before:]} == {"alice"}
    assert stack["app"].kicker.totals["closed"] == closed_before + 1


async def test_a_connection_removed_and_registered_again_by_bob_is_no_longer_hers(
        stack: dict[str, Any], people: dict[str, Person]) -> None:
    alice, bob, operator = people["alice"], people["bob"], people["operator"]
    console, a = stack["console"], stack["a"]
    shared = f"{a}-shared"
    await register(stack, shared, "alice")
    await back_with_a_new_grant(alice)  # kicked once already: the connection became hers after she connected
    alice.returns = 0
    seen: list[str] = []
    await serve(console, Subjects(shared).orders_check, seen)
    heard: list[str] = []
    await alice.nc.subscribe(Subjects(shared).events_all, cb=noter(heard))
    await alice.nc.subscribe(Subjects(a).events_all, cb=noter(heard))
    await alice.nc.flush()
    await console.publish(Subjects(shared).event("session.tickled"), b"{}")
    await eventually(lambda: heard == [Subjects(shared).event("session.tickled")], "her event")
    assert json.loads((await alice.nc.request(Subjects(shared).orders_check, b"{}", timeout=5)).data)["ok"]
    kicked_before = len(stack["app"].kicker.kicked)

    await register(stack, shared, "alice", "removed")
    await register(stack, shared, "bob")
    await back_with_a_new_grant(alice)
    await back_with_a_new_grant(bob)  # his set changed too: his open client gains the connection

    await eventually(lambda: alice.refused("subscription", Subjects(shared).events_all),
                     "her client's subscription, sent again as it reconnected, refused")
    alice.errors.clear()
    heard.clear()
    await alice.nc.publish(Subjects(shared).orders_check, b"{}", reply=alice.nc.new_inbox())
    await eventually(lambda: alice.refused("publish", Subjects(shared).orders_check), "her publish refused")
    await console.publish(Subjects(shared).event("session.tickled"), b"{}")  # Bob's now: she must not hear it
    await console.publish(Subjects(a).event("session.tickled"), b"{}")  # hers, sent after: arrives after
    await eventually(lambda: Subjects(a).event("session.tickled") in heard, "her own connection's event")
    assert heard == [Subjects(a).event("session.tickled")]
    assert seen == [Subjects(shared).orders_check], "a request of alice's reached the connection after it was Bob's"

    reply = await bob.nc.request(Subjects(shared).orders_check, b"{}", timeout=5)
    assert json.loads(reply.data)["ok"] is True
    assert operator.drops == 0, "the operator's connections did not change, yet the operator was disconnected"
    assert {user for user, _ in stack["app"].kicker.kicked[kicked_before:]} == {"alice", "bob"}


def _connection(conn: str, owner: str, port: int = 1) -> Connection:
    return Connection(id=conn, user_id=owner, environment="paper", enabled=True,
                      gateway=GatewaySettings(host="127.0.0.1", port=port))


def test_only_a_change_of_owner_changes_anyones_grant() -> None:
    assert people_affected(None, _connection("x", "alice")) == {"alice"}
    assert people_affected(_connection("x", "alice"), None) == {"alice"}
    assert people_affected(_connection("x", "alice"), _connection("x", "bob")) == {"alice", "bob"}
    assert people_affected(_connection("x", "alice"), _connection("x", "alice", port=2)) == set()


def test_the_clients_held_are_bounded_and_a_kicked_one_forgotten() -> None:
    clients = OpenClients(per_person=2, people=2)
    for cid in (1, 2, 3):
        clients.add("alice", ClientRef("S", cid))
    assert clients.of("alice") == (ClientRef("S", 2), ClientRef("S", 3))
    clients.add("bob", ClientRef("S", 4))
    clients.add("carol", ClientRef("S", 5))
    assert clients.of("alice") == () and clients.of("carol") == (ClientRef("S", 5),)  # the longest ago left
    clients.discard("bob", ClientRef("S", 4))
    assert clients.of("bob") == ()
