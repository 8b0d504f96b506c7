"""The quarantine of deleted connection ids, over real NATS on SQLite and PostgreSQL (as a role under RLS).

A client granted a connection's subjects keeps the grant until its user JWT expires (an hour), so an id
another user deleted is refused (CONFLICT naming `connection`, saying until when) for the quarantine; its
last owner may take it back at once. The registry runs on a frozen clock: the test moves time, it never
waits for it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, select, text

from ibkr_common.clock import FrozenClock
from ibkr_common.db.engine import all_users_read_transaction, make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.models import ConnectionTombstone, Credential
from ibkr_common.subjects import USER_JWT_LIFETIME_S
from ibkr_registry.quarantine import leave_tombstone

from .conftest import OTHER, OWNER, admin, create_body, registry_settings

pytestmark = pytest.mark.connected
START = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def zulu(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


async def tombstones(database_url: str, connection: str) -> list[tuple[str, datetime]]:
    """`(user_id, until)` of the tombstones of `connection`, every user's."""
    engine = make_engine(database_url)
    try:
        async with all_users_read_transaction(make_sessionmaker(engine)) as session:
            rows = (await session.execute(select(ConnectionTombstone.user_id, ConnectionTombstone.until)
                                          .where(ConnectionTombstone.connection == connection)
                                          .order_by(ConnectionTombstone.user_id))).all()
    finally:
        await engine.dispose()
    return [(r[0], r[1]) for r in rows]


async def test_a_deleted_id_is_held_for_its_owner_until_the_quarantine_ends(any_database, names, nats_client,
                                                                             start_registry):
    clock = FrozenClock(START)
    ref = {"user_id": OWNER, "connection": names.conn}
    async with start_registry(any_database, clock=clock):
        assert (await admin(nats_client, "connections.create", create_body(names)))["ok"]
        assert (await admin(nats_client, "connections.delete", ref))["ok"]
        until = START + timedelta(seconds=7200)  # the default quarantine: two hours
        assert await tombstones(any_database, names.conn) == [(OWNER, until)]

        taken = await admin(nats_client, "connections.create", create_body(names, user_id=OTHER))
        assert taken["ok"] is False and taken["error"]["code"] == "CONFLICT", taken
        assert taken["error"]["details"] == [
            {"field": "connection", "message": f"quarantined until {zulu(until)} (deleted by another user)"}]
        assert zulu(until) in taken["error"]["message"] and OWNER not in taken["error"]["message"]
        assert (await admin(nats_client, "connections.get", {"user_id": OTHER, "connection": names.conn})
                )["error"]["code"] == "NOT_FOUND"  # refused whole: nothing of it was kept

        back = await admin(nats_client, "connections.create", create_body(names))  # the owner, at once
        assert back["ok"], back
        assert back["result"]["user_id"] == OWNER
        assert await tombstones(any_database, names.conn) == []
        assert (await admin(nats_client, "connections.delete", ref))["ok"]
        again = START + timedelta(seconds=7200)
        assert await tombstones(any_database, names.conn) == [(OWNER, again)]

        clock.advance(7200 - 1)
        still = await admin(nats_client, "connections.create", create_body(names, user_id=OTHER))
        assert still["error"]["code"] == "CONFLICT", still
        clock.advance(1)
        mine = await admin(nats_client, "connections.create", create_body(names, user_id=OTHER))
        assert mine["ok"], mine
        assert mine["result"]["user_id"] == OTHER
        # the new owner deletes it in turn: now it is held for them, and the first owner is refused
        assert (await admin(nats_client, "connections.delete", {"user_id": OTHER, "connection": names.conn}))["ok"]
        gone = await admin(nats_client, "connections.create", create_body(names))
        assert gone["error"]["code"] == "CONFLICT"
        assert gone["error"]["details"][0]["field"] == "connection"
    owners = [user for user, _ in await tombstones(any_database, names.conn)]
    assert OTHER in owners


async def test_the_quarantine_is_a_setting(any_database, names, nats_client, start_registry):
    clock = FrozenClock(START)
    async with start_registry(any_database, clock=clock, quarantine_s=5400):
        assert (await admin(nats_client, "connections.create", create_body(names)))["ok"]
        assert (await admin(nats_client, "connections.delete", {"user_id": OWNER, "connection": names.conn}))["ok"]
        until = START + timedelta(seconds=5400)
        taken = await admin(nats_client, "connections.create", create_body(names, user_id=OTHER))
        assert zulu(until) in taken["error"]["message"], taken
        clock.advance(5400)
        assert (await admin(nats_client, "connections.create", create_body(names, user_id=OTHER)))["ok"]
        # another connection, deleted now: the first owner's expired tombstone went with their next write
        assert (await admin(nats_client, "connections.create", create_body(names, conn=names.conn2)))["ok"]
        assert (await admin(nats_client, "connections.delete",
                            {"user_id": OWNER, "connection": names.conn2}))["ok"]
    assert await tombstones(any_database, names.conn) == []
    assert [user for user, _ in await tombstones(any_database, names.conn2)] == [OWNER]


def test_the_quarantine_outlasts_a_user_jwt(names) -> None:
    assert registry_settings(names, "nats://x", "sqlite://").quarantine_s > USER_JWT_LIFETIME_S
    with pytest.raises(ValidationError, match="IBKR_REGISTRY_QUARANTINE_S"):
        registry_settings(names, "nats://x", "sqlite://", IBKR_REGISTRY_QUARANTINE_S=USER_JWT_LIFETIME_S - 1)
    assert registry_settings(names, "nats://x", "sqlite://",
                             IBKR_REGISTRY_QUARANTINE_S=USER_JWT_LIFETIME_S).quarantine_s == USER_JWT_LIFETIME_S


async def test_a_create_racing_a_delete_still_sees_its_tombstone(names, nats_client, start_registry,
                                                                 make_database) -> None:
    """PostgreSQL: Bob registers the id while Alice's delete is still in flight. His insert waits for her
    transaction; once she commits, the check after it sees her tombstone."""
    url = make_database("qrace" + names.conn.rsplit("-", 1)[1])
    async with start_registry(url):
        assert (await admin(nats_client, "connections.create", create_body(names)))["ok"]
        engine = make_engine(url)
        try:
            async with user_transaction(make_sessionmaker(engine), OWNER) as alice:
                await alice.execute(delete(Credential).where(Credential.connection == names.conn))
                await leave_tombstone(alice, names.conn, OWNER, datetime.now(UTC), 7200)
                await alice.flush()
                bob = asyncio.create_task(admin(nats_client, "connections.create", create_body(names, user_id=OTHER)))
                async with engine.connect() as watch:  # until Bob's insert waits on Alice's row
                    for _ in range(200):
                        waiting = (await watch.execute(text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock'"))).scalar_one()
                        if waiting:
                            break
                        await asyncio.sleep(0.05)
                assert waiting == 1, "the registry's insert never waited for the delete in flight"
            reply = await bob
        finally:
            await engine.dispose()
    assert reply["error"]["code"] == "CONFLICT", reply
    assert reply["error"]["details"][0]["field"] == "connection"
    assert "quarantined" in reply["error"]["message"]
    engine = make_engine(url)
    try:
        async with all_users_read_transaction(make_sessionmaker(engine)) as session:
            assert (await session.execute(select(func.count()).select_from(Credential)
                                          .where(Credential.connection == names.conn))).scalar_one() == 0
    finally:
        await engine.dispose()
