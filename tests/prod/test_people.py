"""People log in through NATS's auth callout in the production topology (deploy/nats.conf's `auth_callout`,
the `authz` service of docker-compose.yml): the harness's one person, `alice`, owns the bootstrap connection
(IBKR_USER_ID) and logs in with her own password; the server allows her that connection's commands and
events and nothing else, and refuses a wrong password. The static users are not asked about (every other
test of tests/prod logs in as one)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ibkr_authz.permissions import inbox_prefix

from ibkr_contract.connections import AdminSubjects
from ibkr_devstack.prod import ProdStack

from .prodkit import CONN, connected

pytestmark = [pytest.mark.connected, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]
ADMIN = AdminSubjects()
OTHER = "prod-bob"


def _person(prod: ProdStack) -> tuple[str, str]:
    return prod.variables["AUTHZ_PERSON"], prod.variables["AUTHZ_PERSON_PASSWORD"]


def _as_person(prod: ProdStack, user: str | None = None, secret: str | None = None) -> Any:
    person, password = _person(prod)
    user = user or person
    return connected(prod, user, inbox=inbox_prefix(user), secret=password if secret is None else secret)


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
            "user_id": "bob", "connection": OTHER, "environment": "paper",
            "gateway": {"host": "127.0.0.1", "port": int(prod.variables["GATEWAY_PORT"])},
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
