"""The connection registry in the production topology: the client runs the setup flow, only the operator
rotates the key, and the registry may reach nothing but what verification and acknowledgment need."""

from __future__ import annotations

import json
from typing import Any

from ibkr_contract.connections import AdminSubjects
from ibkr_devstack.prod import ProdStack

from .prodkit import CONN, connected

ADMIN = AdminSubjects()


async def _admin(conn: Any, command: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await conn.nc.request(ADMIN.command(command), json.dumps(body).encode(), timeout=15)
    return json.loads(reply.data)  # type: ignore[no-any-return]


async def test_the_client_registers_a_connection_and_sees_the_bootstrap_one(prod: ProdStack) -> None:
    owner = prod.environments["registry"]["IBKR_USER_ID"]
    async with connected(prod, "client") as client:
        created = await _admin(client, "connections.create", {
            "user_id": "prod-user", "connection": "prod-second", "environment": "paper",
            "gateway": {"host": "127.0.0.1", "port": int(prod.variables["GATEWAY_PORT"])},
            "username": "produser1"})
        assert created["ok"], created
        assert (created["result"]["state"], created["result"]["enabled"]) == ("unverified", False)
        mine = await _admin(client, "connections.list", {"user_id": "prod-user"})
        assert [c["connection"] for c in mine["result"]["connections"]] == ["prod-second"]
        boot = await _admin(client, "connections.list", {"user_id": owner})
        assert [(c["connection"], c["bootstrap"], c["enabled"]) for c in boot["result"]["connections"]] == [
            (CONN, True, True)]
        forbidden = await _admin(client, "connections.get", {"user_id": "someone", "connection": "prod-second"})
        assert forbidden["error"]["code"] == "FORBIDDEN"
        assert (await _admin(client, "connections.delete", {"user_id": "prod-user", "connection": "prod-second"}))["ok"]
        # the delete left a tombstone through the services' role: another user may not take the id yet
        held = await _admin(client, "connections.create", {
            "user_id": "someone", "connection": "prod-second", "environment": "paper",
            "gateway": {"host": "127.0.0.1", "port": int(prod.variables["GATEWAY_PORT"])}, "username": "someone1"})
        assert held["ok"] is False and held["error"]["code"] == "CONFLICT", held
        assert "quarantined until" in held["error"]["message"]
        assert client.errors == []


async def test_only_the_operator_rotates_the_key_and_reads_the_directory(prod: ProdStack) -> None:
    async with connected(prod, "client") as client:
        await client.publish_refused(ADMIN.command("connections.rotate_key"))
        await client.publish_refused(ADMIN.command("connections.directory"))
    async with connected(prod, "operator") as operator:
        rotated = await _admin(operator, "connections.rotate_key", {})
        assert rotated["ok"] and rotated["result"]["failed"] == [], rotated
        status = await operator.nc.request(ADMIN.status("registry"), b"{}", timeout=10)
        assert json.loads(status.data)["result"]["service"] == "registry"
        assert operator.errors == []


async def test_the_registry_may_not_place_orders_or_publish_other_events(prod: ProdStack) -> None:
    async with connected(prod, "registry") as registry:
        await registry.publish_refused(f"ibkr.{CONN}.bridge.orders.place")
        await registry.publish_refused(f"ibkr.{CONN}.orders.submit")
        await registry.publish_refused(f"ibkr.{CONN}.events.orders.x.filled")
