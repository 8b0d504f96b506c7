"""People log in through NATS's auth callout in the production topology (deploy/nats.conf's `auth_callout`,
the `authz` service of docker-compose.yml): the harness's one person, `alice`, owns the bootstrap connection
(IBKR_USER_ID) and logs in with her own password; the server allows her that connection's commands and
events and nothing else, and refuses a wrong password. The static users are not asked about (every other
test of tests/prod logs in as one).

Her grant follows the connections she owns while her client stays open (it reconnects on its own, as
nats-py does by default): a connection registered for her through `ibkr_admin.connections.create` is
hers within seconds, and one deleted is no longer hers (nor Bob's to register again during the registry's
quarantine); authz has the server drop the clients of exactly the people whose connections changed
(deploy/nats.conf's system account user `authz-kick`), so a bystander, Carol, stays connected."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from ibkr_authz.permissions import inbox_prefix
from ibkr_authz.users import hash_password

from ibkr_contract.connections import AdminSubjects
from ibkr_devstack.prod import ProdStack

from .prodkit import CONN, NOWHERE, Connection, connected, wait_until

pytestmark = [pytest.mark.connected, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]
ADMIN = AdminSubjects()
OTHER = "prod-bob"
GRANT_CHANGE_S = 10.0  # nats-py reconnects reconnect_time_wait (2 s) after the drop: "within seconds"


def _person(prod: ProdStack) -> tuple[str, str]:
    return prod.variables["AUTHZ_PERSON"], prod.variables["AUTHZ_PERSON_PASSWORD"]


def _as_person(prod: ProdStack, user: str | None = None, secret: str | None = None, *, reconnect: bool = False) -> Any:
    person, password = _person(prod)
    user = user or person
    return connected(prod, user, inbox=inbox_prefix(user), secret=password if secret is None else secret,
                     reconnect=reconnect)


@pytest.fixture(scope="module")
def others(prod: ProdStack) -> dict[str, str]:
    """Bob and Carol, two more people in authz's users file (it is read again when it changes): name -> password."""
    passwords = {user: "p" + secrets.token_hex(16) for user in ("bob", "carol")}
    path = Path(prod.variables["AUTHZ_USERS_DIR"]) / "users.json"
    users = json.loads(path.read_text())
    users["users"].update({user: hash_password(password) for user, password in passwords.items()})
    path.write_text(json.dumps(users))
    return passwords


async def _admin(prod: ProdStack, command: str, body: dict[str, Any]) -> dict[str, Any]:
    """An `ibkr_admin.connections.*` command as the trusted `client` user, acting for `body["user_id"]`."""
    async with connected(prod, "client") as client:
        reply = await client.nc.request(ADMIN.command(command), json.dumps(body).encode(), timeout=15)
    answer: dict[str, Any] = json.loads(reply.data)
    assert answer["ok"], answer
    return answer


async def _create(prod: ProdStack, owner: str, conn: str, username: str = "someone1") -> None:
    """A connection of `owner` through the setup's first step, on `NOWHERE`: only the grant matters here."""
    await _admin(prod, "connections.create", {"user_id": owner, "connection": conn, "environment": "paper",
                                              "gateway": NOWHERE, "username": username})


async def _answered(person: Connection, subject: str) -> dict[str, Any]:
    """A request the server let through (any service's answer, an error reply included)."""
    reply: dict[str, Any] = json.loads((await person.nc.request(subject, b"{}", timeout=15)).data)
    return reply


async def _answered_once_granted(person: Connection, subject: str) -> dict[str, Any]:
    """The answer to a request on a connection just registered for `person`: the registry's event may reach
    authz after the person logged in, and then the kick gives them the grant within seconds."""
    deadline = time.monotonic() + GRANT_CHANGE_S
    while True:
        try:
            reply: dict[str, Any] = json.loads((await person.nc.request(subject, b"{}", timeout=3)).data)
            return reply
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            if time.monotonic() > deadline:
                raise


async def _back_with_a_new_grant(person: Connection, drops: int = 1) -> None:
    await wait_until(lambda: person.drops >= drops and person.returns >= drops and person.nc.is_connected,
                     f"{person.user}'s client dropped and reconnected", GRANT_CHANGE_S)


async def test_the_person_asks_her_own_connection_and_hears_its_events(prod: ProdStack) -> None:
    person, _ = _person(prod)
    assert prod.environments["registry"]["IBKR_USER_ID"] == person  # she owns the bootstrap connection
    async with _as_person(prod) as alice:
        heard: list[dict[str, Any]] = []

        async def hear(msg: Any) -> None:
            heard.append(json.loads(msg.data))

        await alice.nc.subscribe(f"ibkr.{CONN}.events.>", cb=hear)
        status = await alice.call("session.status", {})
        assert status["ok"] and status["result"]["authenticated"] is True, status
        found = await alice.call("contracts.search", {"symbol": "AAPL"})
        assert found["ok"], found
        for _ in range(100):  # the bridge's gateway.call event of that search, on her connection's events
            if any(e["type"] == "gateway.call" and "secdef/search" in json.dumps(e["payload"]) for e in heard):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no gateway.call event heard: {[e['type'] for e in heard]}")
        assert alice.errors == []
    assert f"NATS login of {person}: connections {CONN}" in prod.log("authz")


async def test_the_person_reaches_no_other_connection_nor_anything_but_her_commands(prod: ProdStack) -> None:
    async with connected(prod, "client") as client:  # another user's connection, registered before she logs in
        created = await client.nc.request(ADMIN.command("connections.create"), json.dumps({
            "user_id": "bob", "connection": OTHER, "environment": "paper", "gateway": NOWHERE,
            "username": "bobuser1"}).encode(), timeout=15)
        assert json.loads(created.data)["ok"], created.data
    try:
        async with _as_person(prod) as alice:
            for subject in (f"ibkr.{OTHER}.session.status", f"ibkr.{OTHER}.orders.submit",
                            f"ibkr.{CONN}.bridge.orders.place", f"ibkr.{CONN}.events.trading.halted",
                            f"ibkr.{CONN}.audit.verify", ADMIN.command("connections.list"),
                            ADMIN.command("connections.directory"), "_INBOX_client.forged"):
                await alice.publish_refused(subject)
            for subject in (f"ibkr.{OTHER}.events.>", "ibkr.*.events.>", f"ibkr.{CONN}.bridge.>",
                            "_INBOX_client.>", f"{inbox_prefix('bob')}.>", "$SYS.REQ.USER.AUTH"):
                await alice.subscribe_refused(subject)
            assert (await alice.call("session.status", {}))["ok"]  # her own connection still answers
    finally:
        async with connected(prod, "client") as client:
            await client.nc.request(ADMIN.command("connections.delete"),
                                    json.dumps({"user_id": "bob", "connection": OTHER}).encode(), timeout=15)


@pytest.mark.parametrize("case", ["wrong-password", "unknown-person", "a-service-password",
                                  "a-service-name-with-her-password"])
async def test_a_wrong_password_or_unknown_person_is_refused(prod: ProdStack, case: str) -> None:
    person, password = _person(prod)
    user, secret = {"wrong-password": (person, password + "x"), "unknown-person": ("mallory", password),
                    "a-service-password": (person, prod.variables["CLIENT_NATS_PASSWORD"]),
                    "a-service-name-with-her-password": ("client", password)}[case]
    with pytest.raises(Exception, match="Authorization Violation"):
        async with _as_person(prod, user, secret):
            pass
    log = prod.log("authz")
    assert password not in log and prod.variables["CLIENT_NATS_PASSWORD"] not in log


async def test_a_connection_registered_after_she_connected_is_hers_within_seconds(
        prod: ProdStack, others: dict[str, str]) -> None:
    person, _ = _person(prod)
    new = "prod-alice-new"
    async with _as_person(prod, reconnect=True) as alice, \
            _as_person(prod, "carol", others["carol"], reconnect=True) as carol:
        await alice.publish_refused(f"ibkr.{new}.session.status")  # not registered: not hers
        started = time.monotonic()
        await _create(prod, person, new)
        try:
            await _back_with_a_new_grant(alice)  # nothing called to reconnect: the server dropped her client
            assert "ok" in await _answered(alice, f"ibkr.{new}.session.status")
            took = time.monotonic() - started
            assert took < GRANT_CHANGE_S, took
            assert "ok" in await _answered(alice, f"ibkr.{CONN}.session.status")  # and her first one still
            assert (alice.drops, carol.drops) == (1, 0), "Carol owns nothing that changed, yet was disconnected"
        finally:
            await _admin(prod, "connections.delete", {"user_id": person, "connection": new})
    assert f"grant of {person} changed" in prod.log("authz") and "grant of carol" not in prod.log("authz")


async def test_a_connection_deleted_is_no_longer_hers_and_bob_may_not_take_it(
        prod: ProdStack, others: dict[str, str]) -> None:
    """Her grant goes with the deletion; Bob may not register the id during the registry's quarantine (a client
    authz forgot would keep her grant up to an hour), and nobody else is disconnected."""
    person, _ = _person(prod)
    shared = "prod-shared"
    await _create(prod, person, shared)  # hers before she connects
    async with _as_person(prod, reconnect=True) as alice, \
            _as_person(prod, "bob", others["bob"], reconnect=True) as bob, \
            _as_person(prod, "carol", others["carol"], reconnect=True) as carol:
        heard: list[str] = []

        async def hear(msg: Any) -> None:
            heard.append(msg.subject)

        await alice.nc.subscribe(f"ibkr.{shared}.events.>", cb=hear)
        await alice.nc.flush()
        assert "ok" in await _answered_once_granted(alice, f"ibkr.{shared}.session.status")
        await bob.publish_refused(f"ibkr.{shared}.session.status")

        drops = alice.drops  # 1 when authz heard of the connection only after her login, else 0
        await _admin(prod, "connections.delete", {"user_id": person, "connection": shared})
        await _back_with_a_new_grant(alice, drops + 1)
        await wait_until(lambda: any("subscription to \"ibkr.prod-shared.events.>\"" in e for e in alice.errors),
                         "her client's subscription, sent again as it reconnected, refused")
        await alice.publish_refused(f"ibkr.{shared}.session.status")

        async with connected(prod, "client") as client:
            taken = json.loads((await client.nc.request(ADMIN.command("connections.create"), json.dumps({
                "user_id": "bob", "connection": shared, "environment": "paper", "gateway": NOWHERE,
                "username": "bobuser2"}).encode(), timeout=15)).data)
        assert taken["ok"] is False and taken["error"]["code"] == "CONFLICT", taken
        assert taken["error"]["details"][0]["field"] == "connection"
        assert "quarantined until" in taken["error"]["message"]
        await bob.publish_refused(f"ibkr.{shared}.session.status")
        assert (bob.drops, carol.drops) == (0, 0), "someone whose connections did not change was disconnected"
