"""No secret reaches the logs: the six services run with passwords in NATS_URL and DATABASE_URL and the
encryption passphrases set, serve requests (good and bad), stop, and one of them dies on a dead database;
the whole output is searched for each secret value, raw and percent-encoded."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
from typing import Any
from urllib.parse import quote

import nats
import pytest
from sqlalchemy.engine import make_url

from ibkr_common.subjects import Subjects
from ibkr_contract.connections import AdminSubjects
from ibkr_testkit.processes import ServiceProcess, service_env, start_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.connected]
ACCOUNT = "DU1234567"
SERVICES = ("ibkr_registry", "ibkr_gateway_bridge", "ibkr_session_keeper", "ibkr_sync_worker", "ibkr_audit",
            "ibkr_compliance")
#: The IBKR username the registry is given (stored encrypted; never in a log).
USERNAME = "secretive" + secrets.token_hex(4)


def _with_credentials(url: str, user: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest.rsplit('@', 1)[-1]}"


def _order(client_order_id: str) -> dict[str, Any]:
    return {"client_order_id": client_order_id, "user_id": "alice", "account_id": ACCOUNT, "environment": "paper",
            "instrument": {"conid": 265598}, "side": "BUY", "quantity": "1", "order_type": "LMT",
            "limit_price": "230.00", "tif": "DAY", "position_effect": "open"}


async def _traffic(nats_url: str, conn: str) -> None:
    nc = await nats.connect(nats_url)
    root = f"ibkr.{conn}"
    try:
        for subject, body in [
            ("sync.trigger", {"account_id": ACCOUNT}), ("account.get", {"account_id": ACCOUNT}),
            ("session.status", {}), ("orders.check", _order(f"sec-{secrets.token_hex(4)}")),
            ("audit.verify", {}), ("bridge.accounts.list", {}),
            ("bridge.orders.status", {"order_id": "4040404040"}),  # the gateway's refusal is logged in the handler
        ]:
            reply = json.loads((await nc.request(f"{root}.{subject}", json.dumps(body).encode(), timeout=60)).data)
            assert "ok" in reply, (subject, reply)
        for subject in ("orders.submit", "sync.trigger", "bridge.session.tickle", "audit.query"):
            reply = json.loads((await nc.request(f"{root}.{subject}", b"{not json", timeout=30)).data)
            assert reply["ok"] is False, (subject, reply)
        admin = AdminSubjects()
        second = f"{conn}-2"
        for command, body in [
            ("connections.create", {"user_id": "alice", "connection": second, "environment": "paper",
                                    "gateway": {"host": "127.0.0.1", "port": 1}, "username": USERNAME}),
            ("connections.update", {"user_id": "alice", "connection": second, "username": USERNAME + "x"}),
            ("connections.verify", {"user_id": "alice", "connection": second}),
            ("connections.verify", {"user_id": "local", "connection": conn}),
            ("connections.rotate_key", {}),
            ("connections.create", {"user_id": "alice", "connection": second, "username": USERNAME}),
            ("connections.delete", {"user_id": "alice", "connection": second}),
        ]:
            reply = json.loads((await nc.request(admin.command(command), json.dumps(body).encode(), timeout=60)).data)
            assert "ok" in reply and USERNAME not in json.dumps(reply), (command, reply)
        reply = json.loads((await nc.request(admin.command("connections.create"), b"{not json", timeout=30)).data)
        assert reply["ok"] is False
    finally:
        await nc.close()


async def test_no_secret_in_the_logs_of_a_whole_run(nats_url, cpsim_url, run_names, make_database):
    conn = f"{run_names.conn}-sec"
    nats_password = f"natsPW-{secrets.token_hex(8)}/+"
    database_url = make_database("secrets")
    db_password = make_url(database_url).password
    assert db_password
    key, old_one, old_two = (secrets.token_urlsafe(32) for _ in range(3))
    secret_values = [nats_password, str(db_password), key, old_one, old_two, USERNAME]
    env = service_env(
        nats_url=_with_credentials(nats_url, "ibkr", quote(nats_password, safe="")), database_url=database_url,
        conn=conn, stream=f"{run_names.stream}_SEC", stream_subjects=f"ibkr.{conn}.events.>", gateway_url=cpsim_url,
        IBKR_LOG_LEVEL="DEBUG", IBKR_MIGRATE_ON_START="false", IBKR_ENCRYPTION_KEY=key,
        IBKR_OLD_ENCRYPTION_KEYS=f"{old_one},{old_two}", IBKR_OPTIONS_LEVELS=f"{ACCOUNT}=2",
    )
    processes: list[ServiceProcess] = []
    try:
        for module in SERVICES:
            processes.append(start_service(module, env))
        await _traffic(nats_url, conn)
    finally:
        for process in reversed(processes):
            process.stop()
    with socket.socket() as sock:  # and a service that dies at start on a database nobody serves
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead = make_url(database_url).set(host="127.0.0.1", port=dead_port).render_as_string(hide_password=False)
    crashed = start_service("ibkr_compliance", {**env, "DATABASE_URL": dead, "IBKR_MIGRATE_ON_START": "true"},
                            ready="")
    try:
        assert crashed.proc.wait(timeout=60) == 1
    except subprocess.TimeoutExpired:
        crashed.kill()
        raise
    crashed.wait_for_line("stopped on an error", timeout=5)
    processes.append(crashed)

    lines = [line for process in processes for line in process.lines]
    output = "".join(lines)
    for value in secret_values:
        for form in {value, quote(value, safe=""), quote(value)}:
            assert form not in output, f"a secret ({value[:4]}...) is in the logs"
    records = [json.loads(line) for line in lines if line.strip()]  # every line is a JSON object
    assert {r["service"] for r in records} == {"gateway-bridge", "session-keeper", "sync-worker", "audit",
                                               "compliance", "registry"}
    assert any(f"nats nats://ibkr:***@{nats_url.split('://', 1)[1]}" in r["msg"] for r in records)
    assert any("postgresql+psycopg" in r.get("exc", "") or "connection failed" in r.get("exc", "")
               for r in records), "the crash's traceback is logged"
    assert any(r.get("correlation_id") and r["service"] == "gateway-bridge" for r in records)
    # FastStream names the subscription's subject: the bridge serves every connection on `ibkr.*.bridge.<op>`
    every_accounts_list = Subjects.every_connection().bridge("accounts.list")
    assert any(r.get("subject") == every_accounts_list and r.get("message_id") for r in records)
