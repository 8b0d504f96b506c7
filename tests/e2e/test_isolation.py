"""Isolation through the services: a request as one user for another user's connection is FORBIDDEN.

The real sync-worker, compliance and audit run as processes with ownership enforced
(`IBKR_ENFORCE_OWNERSHIP=true`) on a bootstrap connection owned by alice (`IBKR_USER_ID`); bob's
connection comes from the registry's event. Each read a user may make of a connection (sync-worker's
positions/orders/account, compliance's status, audit's query) answers FORBIDDEN to the other user, with
the `user_id` field named, and does not answer FORBIDDEN to the owner. The rows themselves are kept
apart by RLS (libs/common/tests/test_rls_two_users.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import nats
import pytest

from ibkr_common.subjects import Subjects
from ibkr_testkit.connections import announce_connection, connection_view
from ibkr_testkit.processes import ServiceProcess, service_env, start_service

pytestmark = [pytest.mark.connected, pytest.mark.e2e, pytest.mark.slow]
ALICE, BOB = "alice", "bob"
ACCOUNT = "DU1234567"
#: (command, service module, body without user_id)
READS = [
    ("positions.get", "ibkr_sync_worker", {"account_id": ACCOUNT}),
    ("orders.get", "ibkr_sync_worker", {"account_id": ACCOUNT}),
    ("account.get", "ibkr_sync_worker", {"account_id": ACCOUNT}),
    ("compliance.status", "ibkr_compliance", {"account_id": ACCOUNT}),
    ("audit.query", "ibkr_audit", {}),
    ("session.status", "ibkr_session_keeper", {}),
]
#: Commands that change something: a trusted caller states the user it acts for, checked the same way.
WRITES = [
    ("orders.cancel", "ibkr_compliance", {"account_id": ACCOUNT, "client_order_id": "not-placed-1"}),
    ("orders.confirm", "ibkr_compliance", {"client_order_id": "not-placed-1", "reply_id": "r1", "confirmed": True}),
    ("trading.halt", "ibkr_compliance", {"reason": "isolation test"}),
    ("trading.resume", "ibkr_compliance", {"reason": "isolation test"}),
]


@pytest.fixture(scope="module")
def stack(nats_url: str, make_database: Callable[[str], str], cpsim_url: str,
          run_names: Any) -> Iterator[dict[str, Any]]:
    """sync-worker, compliance and audit on alice's bootstrap connection, ownership enforced."""
    conn, bobs = f"{run_names.conn}-iso", f"{run_names.conn}-isob"
    env = service_env(nats_url=nats_url, database_url=make_database("iso"), conn=conn,
                      stream=f"{run_names.stream}_ISO",
                      stream_subjects=f"{Subjects(conn).events_all},{Subjects(bobs).events_all}",
                      gateway_url=cpsim_url, IBKR_USER_ID=ALICE, IBKR_ENFORCE_OWNERSHIP="true",
                      IBKR_AUDIT_CONSUMER=f"audit-{run_names.run_id}-iso")
    started: list[ServiceProcess] = []
    try:
        for module in ("ibkr_audit", "ibkr_sync_worker", "ibkr_compliance", "ibkr_session_keeper"):
            started.append(start_service(module, env, timeout=90))
        yield {"conn": conn, "bobs": bobs, "gateway": cpsim_url}
    finally:
        for service in started:
            service.stop()


async def ask(nc: Any, conn: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await nc.request(Subjects(conn).command(command), json.dumps(body).encode(), timeout=15)
    return json.loads(reply.data)


@pytest.mark.parametrize(("command", "service", "body"), READS + WRITES, ids=[r[0] for r in READS + WRITES])
async def test_another_users_request_is_forbidden_on_every_read(
        nats_url: str, stack: dict[str, Any], command: str, service: str, body: dict[str, Any]) -> None:
    nc = await nats.connect(nats_url)
    try:
        await announce_connection(nc, connection_view(stack["bobs"], user_id=BOB, gateway_url=stack["gateway"]))
        for conn, owner, intruder in ((stack["conn"], ALICE, BOB), (stack["bobs"], BOB, ALICE)):
            for _ in range(50):  # bob's connection reaches each service's directory through the event
                refused = await ask(nc, conn, command, {**body, "user_id": intruder})
                if refused.get("error", {}).get("code") != "NOT_FOUND":
                    break
                await asyncio.sleep(0.2)
            assert refused["ok"] is False and refused["error"]["code"] == "FORBIDDEN", (service, conn, refused)
            assert {"field": "user_id", "message": "not the connection's owner"} in refused["error"]["details"]
            allowed = await ask(nc, conn, command, {**body, "user_id": owner})
            assert allowed.get("error", {}).get("code") != "FORBIDDEN", (service, conn, allowed)
    finally:
        await nc.close()
