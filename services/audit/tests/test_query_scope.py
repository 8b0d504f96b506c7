"""`audit.query` is served on every connection and answers only the events of the connection it was asked on,
to its owner: FORBIDDEN for another user, NOT_FOUND for a connection that is not registered. The bootstrap
connection keeps its unscoped view for callers that name no user until ownership is enforced."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any

import pytest
from faststream import TestApp

from ibkr_audit.app import build_app
from ibkr_audit.settings import AuditSettings
from ibkr_common.subjects import Subjects
from ibkr_testkit.connections import announce_connection, connection_view

from .audit_helpers import event, publish, stored, wait_until

pytestmark = [pytest.mark.connected]
ALICE, BOB = "alice", "bob"


async def query(nc: Any, on: str, **body: Any) -> dict[str, Any]:
    reply = await nc.request(Subjects(on).audit_query, json.dumps({"limit": 1000, **body}).encode(), timeout=10)
    return json.loads(reply.data)


def conns_of(reply: dict[str, Any]) -> set[str]:
    assert reply["ok"] is True, reply
    return {e["conn"] for e in reply["result"]["events"]}


@asynccontextmanager
async def audit(names: Any, nats_url: str, database_url: str, other: str, **extra: Any):  # type: ignore[no-untyped-def]
    """Audit with `names.conn` as its bootstrap connection (owned by alice), its stream covering `other` too."""
    settings = AuditSettings(
        nats_url=nats_url, database_url=database_url, connection=names.conn, user_id=ALICE,
        events_stream=names.stream, events_subjects=f"{names.subjects},{Subjects(other).events_all}",
        audit_consumer=names.consumer, **extra)
    async with TestApp(build_app(settings)) as running:
        yield running


async def test_each_connection_answers_its_own_events_to_its_owner(
        names: Any, nats_url: str, nats_client: Any, fresh_pg: str) -> None:
    bobs = f"{names.conn}-b"
    js = nats_client.jetstream()
    async with audit(names, nats_url, fresh_pg, bobs):
        assert (await query(nats_client, bobs))["error"]["code"] == "NOT_FOUND"  # not registered yet
        await announce_connection(nats_client, connection_view(bobs, user_id=BOB, gateway_url="https://127.0.0.1:1"))

        async def registered() -> bool:
            return (await query(nats_client, bobs, user_id=BOB))["ok"] is True

        await wait_until(registered, what="bob's connection in audit's directory")
        for conn, kind in [(names.conn, "gateway.call"), (names.conn, "session.tickled"), (bobs, "gateway.call"),
                           (bobs, "sync.completed"), (names.conn, "trading.halted")]:
            await publish(js, names.stream, event(conn, kind))

        async def all_stored() -> bool:
            return await stored(fresh_pg) == 6  # the five, and the registry's connection.registered of bob's

        await wait_until(all_stored, what="6 events")

        bob = await query(nats_client, bobs, user_id=BOB)
        assert conns_of(bob) == {bobs}
        assert sorted(e["type"] for e in bob["result"]["events"]) == [
            "connection.registered", "gateway.call", "sync.completed"]
        assert conns_of(await query(nats_client, bobs)) == {bobs}  # a trusted caller naming no user: still bob's only

        refused = await query(nats_client, bobs, user_id=ALICE)
        assert refused["ok"] is False and refused["error"]["code"] == "FORBIDDEN"
        assert refused["error"]["details"] == [{"field": "user_id", "message": "not the connection's owner"}]
        sideways = await query(nats_client, bobs, user_id=BOB, conn=names.conn)
        assert sideways["error"]["code"] == "FORBIDDEN" and sideways["error"]["details"][0]["field"] == "conn"
        assert (await query(nats_client, f"{names.conn}-z", user_id=BOB))["error"]["code"] == "NOT_FOUND"

        # The bootstrap connection, ownership not enforced: today's view for a caller naming no user...
        assert conns_of(await query(nats_client, names.conn)) == {names.conn, bobs}
        assert conns_of(await query(nats_client, names.conn, conn=bobs)) == {bobs}
        # ...and a query naming a user is narrowed to the bootstrap connection's events.
        alice = await query(nats_client, names.conn, user_id=ALICE)
        assert conns_of(alice) == {names.conn} and len(alice["result"]["events"]) == 3


async def test_the_bootstrap_connection_is_checked_once_ownership_is_enforced(
        names: Any, nats_url: str, nats_client: Any, fresh_pg: str) -> None:
    others = f"{names.conn}-o"
    js = nats_client.jetstream()
    async with audit(names, nats_url, fresh_pg, others, enforce_ownership=True):
        await publish(js, names.stream, event(names.conn, "gateway.call"))
        await publish(js, names.stream, event(others, "gateway.call"))

        async def both() -> bool:
            return await stored(fresh_pg) == 2

        await wait_until(both, what="2 events")
        refused = await query(nats_client, names.conn, user_id=BOB)
        assert refused["error"]["code"] == "FORBIDDEN"
        assert conns_of(await query(nats_client, names.conn, user_id=ALICE)) == {names.conn}
        assert conns_of(await query(nats_client, names.conn)) == {names.conn}  # no unscoped view any more
        assert (await query(nats_client, names.conn, conn=others))["error"]["code"] == "FORBIDDEN"
