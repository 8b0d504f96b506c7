"""The registry's commands over real NATS, on SQLite and on PostgreSQL (as a role under RLS): each command,
each error code, the bootstrap connection, the outbox and its events, the encrypted column."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select, text

from ibkr_common.crypto import CredentialCipher, DecryptionError
from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.models import Credential, OutboxEvent
from ibkr_contract.connections import AdminSubjects, ConnectionPayload, ConnectionView
from ibkr_registry.store import associated_data

from .conftest import KEY_NEW, OTHER, OWNER, USERNAME, admin, create_body

pytestmark = pytest.mark.connected


async def test_create_get_list_update_delete_with_events(any_database, names, nats_client, events, start_registry):
    async with start_registry(any_database):
        created = await admin(nats_client, "connections.create", create_body(names))
        assert created["ok"], created
        view = ConnectionView.model_validate(created["result"])
        assert (view.state, view.enabled, view.bootstrap, view.username_set) == ("unverified", False, False, True)
        assert view.key_id == CredentialCipher(KEY_NEW).current_key_id
        assert USERNAME not in json.dumps(created)

        got = await admin(nats_client, "connections.get", {"user_id": OWNER, "connection": names.conn})
        assert got["ok"] and got["result"]["connection"] == names.conn
        listed = await admin(nats_client, "connections.list", {"user_id": OWNER})
        assert [c["connection"] for c in listed["result"]["connections"]] == [names.conn]
        assert (await admin(nats_client, "connections.list", {"user_id": OTHER}))["result"]["connections"] == []

        moved = await admin(nats_client, "connections.update", {
            "user_id": OWNER, "connection": names.conn, "gateway": {"host": "127.0.0.1", "port": 5998, "ssl": False}})
        assert moved["ok"], moved
        assert moved["result"]["gateway"] == {"host": "127.0.0.1", "port": 5998, "ssl": False, "ca_pem": None}
        assert moved["result"]["state"] == "unverified"
        off = await admin(nats_client, "connections.update", {"user_id": OWNER, "connection": names.conn,
                                                              "enabled": False})
        assert off["result"]["state"] == "disabled" and off["result"]["enabled"] is False

        deleted = await admin(nats_client, "connections.delete", {"user_id": OWNER, "connection": names.conn})
        assert deleted == {"ok": True, "result": {"connection": names.conn, "deleted": True}}
        gone = await admin(nats_client, "connections.get", {"user_id": OWNER, "connection": names.conn})
        assert gone["error"]["code"] == "NOT_FOUND"

        await events.wait_for("connection.removed", names.conn)
        assert events.types(names.conn) == ["connection.registered", "connection.updated", "connection.updated",
                                            "connection.removed"]
        mine = [e for e in events.items if e["conn"] == names.conn]
        payload = ConnectionPayload.model_validate(mine[1]["payload"])
        assert payload.changes == ["gateway"] and payload.connection.gateway.port == 5998
        assert all(e["source"] == "registry" and e["user_id"] == OWNER for e in events.items if e["conn"] == names.conn)
        assert not any(USERNAME.encode() in raw for raw in events.raw)

    engine = make_engine(any_database)
    async with make_sessionmaker(engine)() as session:  # the outbox is not user-owned
        rows = (await session.execute(select(OutboxEvent).where(OutboxEvent.source == "registry")
                                      .order_by(OutboxEvent.id))).scalars().all()
    await engine.dispose()
    mine = [r for r in rows if f".{names.conn}." in r.subject]
    assert [r.subject.rsplit(".", 1)[1] for r in mine] == ["registered", "updated", "updated", "removed"]
    assert all(r.published_at is not None for r in mine)
    assert {json.loads(r.envelope)["event_id"] for r in mine} == {
        e["event_id"] for e in events.items if e["conn"] == names.conn}


async def test_error_codes_name_the_field(any_database, names, nats_client, start_registry):
    async with start_registry(any_database):
        assert (await admin(nats_client, "connections.create", create_body(names)))["ok"]
        again = await admin(nats_client, "connections.create", create_body(names, user_id=OTHER))
        assert again["error"]["code"] == "CONFLICT"
        assert again["error"]["details"] == [{"field": "connection", "message": "exists already"}]

        ref = {"user_id": OTHER, "connection": names.conn}
        for command, extra in [("connections.get", {}), ("connections.verify", {}), ("connections.delete", {}),
                               ("connections.update", {"username": "x"}),
                               ("connections.settings", {"accounts": [{"account_id": "DU1"}]}),
                               ("connections.acknowledge", {"disclosures": ["options_risk"]})]:
            reply = await admin(nats_client, command, {**ref, **extra})
            assert reply["error"]["code"] == "FORBIDDEN", (command, reply)
            assert reply["error"]["details"] == [{"field": "user_id", "message": "not the connection's owner"}]

        unknown = await admin(nats_client, "connections.get", {"user_id": OWNER, "connection": names.conn2})
        assert unknown["error"]["code"] == "NOT_FOUND"
        assert unknown["error"]["details"][0]["field"] == "connection"

        cases = [
            ({**create_body(names, conn=names.conn2), "environment": "demo"}, "environment"),
            ({**create_body(names, conn=names.conn2), "connection": "Bad_Id"}, "connection"),
            ({**create_body(names, conn=names.conn2), "gateway": {"host": "h", "port": 70000}}, "gateway.port"),
            ({**create_body(names, conn=names.conn2), "gateway": {"host": "h", "port": 1, "ca_pem": "x"}},
             "gateway.ca_pem"),
            ({**create_body(names, conn=names.conn2), "username": ""}, "username"),
            ({k: v for k, v in create_body(names, conn=names.conn2).items() if k != "user_id"}, "user_id"),
        ]
        for body, field in cases:
            reply = await admin(nats_client, "connections.create", body)
            assert reply["error"]["code"] == "VALIDATION_ERROR", (field, reply)
            assert field in [d["field"] for d in reply["error"]["details"]], (field, reply)
            assert USERNAME not in json.dumps(reply)
        not_json = await admin(nats_client, "connections.create", b"{nope")
        assert not_json["error"]["code"] == "VALIDATION_ERROR" and not_json["error"]["details"][0]["field"] == "body"

        nothing = await admin(nats_client, "connections.update", {"user_id": OWNER, "connection": names.conn})
        assert nothing["error"]["code"] == "VALIDATION_ERROR" and nothing["error"]["details"][0]["field"] == "body"
        level = await admin(nats_client, "connections.settings", {
            "user_id": OWNER, "connection": names.conn, "accounts": [{"account_id": "DU1", "options_level": 5}]})
        assert level["error"]["details"][0]["field"] == "accounts.0.options_level"
        unverified = await admin(nats_client, "connections.settings", {
            "user_id": OWNER, "connection": names.conn, "accounts": [{"account_id": "DU1", "options_level": 2}]})
        assert unverified["error"]["code"] == "VALIDATION_ERROR"
        assert unverified["error"]["details"][0]["field"] == "accounts.0.account_id"
        switch_on = await admin(nats_client, "connections.update",
                                {"user_id": OWNER, "connection": names.conn, "enabled": True})
        assert switch_on["error"]["code"] == "CONFLICT" and "verify" in switch_on["error"]["message"]


async def test_bootstrap_connection_is_listed_enabled_and_not_editable(any_database, names, nats_client, events,
                                                                       start_registry):
    async with start_registry(any_database, user_id=OWNER):
        listed = await admin(nats_client, "connections.list", {"user_id": OWNER})
        (boot,) = listed["result"]["connections"]
        assert (boot["connection"], boot["bootstrap"], boot["enabled"], boot["state"]) == (
            names.boot, True, True, "enabled")
        assert boot["username_set"] is False and boot["key_id"] is None
        directory = await admin(nats_client, "connections.directory", {})
        assert names.boot in [c["connection"] for c in directory["result"]["connections"]]
        for command, extra in [("connections.update", {"username": "someone"}), ("connections.delete", {})]:
            reply = await admin(nats_client, command, {"user_id": OWNER, "connection": names.boot, **extra})
            assert reply["error"]["code"] == "CONFLICT", reply
            assert "bootstrap" in reply["error"]["message"]
        taken = await admin(nats_client, "connections.create", create_body(names, conn=names.boot))
        assert taken["error"]["code"] == "CONFLICT"
        # today's behaviour: without IBKR_ENFORCE_OWNERSHIP anyone may read the bootstrap connection
        assert (await admin(nats_client, "connections.get", {"user_id": OTHER, "connection": names.boot}))["ok"]
        await events.wait_for("connection.enabled", names.boot)
        status = await nats_client.request(AdminSubjects().status("registry"), b"{}", timeout=5)
        body = json.loads(status.data)
        assert body["ok"] and body["result"]["service"] == "registry"
        assert body["result"]["details"]["key_id"] == CredentialCipher(KEY_NEW).current_key_id
    async with start_registry(any_database, user_id=OWNER, enforce_ownership=True):
        owned = await admin(nats_client, "connections.get", {"user_id": OTHER, "connection": names.boot})
        assert owned["error"]["code"] == "FORBIDDEN"
        assert (await admin(nats_client, "connections.get", {"user_id": OWNER, "connection": names.boot}))["ok"]


async def test_verify_without_a_bridge_says_which_check_failed(any_database, names, nats_client, start_registry):
    async with start_registry(any_database, bridge_timeout_s=2, compliance_timeout_s=1):
        assert (await admin(nats_client, "connections.create", create_body(names)))["ok"]
        reply = await admin(nats_client, "connections.verify", {"user_id": OWNER, "connection": names.conn})
    assert reply["ok"], reply
    result = reply["result"]
    assert result["ok"] is False
    reachable = result["checks"][0]
    assert reachable["check"] == "reachable" and reachable["ok"] is False
    assert f"no gateway-bridge serves connection {names.conn}" in reachable["detail"]
    assert result["connection"]["state"] == "unverified" and result["connection"]["enabled"] is False


async def test_username_is_encrypted_at_rest_bound_to_its_row(any_database, names, nats_client, start_registry):
    async with start_registry(any_database):
        assert (await admin(nats_client, "connections.create", create_body(names)))["ok"]
    engine = make_engine(any_database)
    async with user_transaction(make_sessionmaker(engine), OWNER) as session:
        raw = (await session.execute(text(
            "SELECT username_encrypted, key_id, user_id FROM ibkr_credentials WHERE connection = :c"),
            {"c": names.conn})).one()
    async with user_transaction(make_sessionmaker(engine), OTHER) as session:  # RLS on PostgreSQL
        hidden = (await session.execute(select(Credential).where(Credential.connection == names.conn))).all()
    await engine.dispose()
    value, key_id, owner = raw
    cipher = CredentialCipher(KEY_NEW)
    assert USERNAME not in value and value.startswith(f"v1:{key_id}:") and key_id == cipher.current_key_id
    assert cipher.decrypt(value, associated_data(owner, names.conn)) == USERNAME
    with pytest.raises(DecryptionError):  # copied to another user's row, it does not open
        cipher.decrypt(value, associated_data(OTHER, names.conn))
    if "postgresql" in any_database:
        assert hidden == []


async def test_the_services_connection_directory_follows_the_registry(sqlite_url, names, nats_url, nats_client,
                                                                       start_registry):
    from faststream import FastStream, TestApp
    from faststream.nats import NatsBroker

    from ibkr_common.connections import ConnectionDirectory
    from ibkr_common.settings import CommonSettings

    broker = NatsBroker(nats_url)
    directory = ConnectionDirectory(broker, CommonSettings(nats_url=nats_url, connection=names.boot,
                                                           user_id="operator"), refresh_s=3600)
    heard: list[tuple[str | None, str | None]] = []

    async def listener(before, after) -> None:
        if names.conn in (getattr(before, "id", None), getattr(after, "id", None)):
            heard.append((before and before.id, after and after.id))

    directory.on_change(listener)
    directory.subscribe()
    async with start_registry(sqlite_url), TestApp(FastStream(broker)):
        assert (await admin(nats_client, "connections.create", create_body(names)))["ok"]
        assert await directory.refresh()
        held = directory.get(names.conn)
        assert held is not None and (held.user_id, held.enabled, held.bootstrap) == (OWNER, False, False)
        assert directory.get(names.boot).bootstrap is True
        assert (await admin(nats_client, "connections.delete", {"user_id": OWNER, "connection": names.conn}))["ok"]
        for _ in range(100):  # the `removed` event reaches it without a refresh
            if directory.get(names.conn) is None:
                break
            await asyncio.sleep(0.05)
    assert directory.get(names.conn) is None
    assert heard[0] == (None, names.conn) and heard[-1] == (names.conn, None)
