"""A live login (cpsim with a U-account): a live connection verifies and may enable live trading per account;
a paper connection pointed at the same gateway fails its environment check and stays unverified."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from ibkr_testkit.processes import ServiceProcess, service_env, start_service

from .conftest import OWNER, Names, admin, create_body, serves_the_tests, until_served

pytestmark = [pytest.mark.connected, pytest.mark.slow]
LIVE_ACCOUNT = "U7654321"


@pytest.fixture
def live_gateway(cpsim_url: str) -> Iterator[str]:
    with httpx.Client(verify=False, timeout=10) as sim:
        sim.post(f"{cpsim_url}/sim/reset", json={"accounts": [{"id": LIVE_ACCOUNT}]}).raise_for_status()
        try:
            yield cpsim_url
        finally:
            sim.post(f"{cpsim_url}/sim/reset").raise_for_status()  # back to the default paper account


@pytest.fixture
def start_bridge(names: Names, nats_url: str, live_gateway: str) -> Iterator[Callable[[str], None]]:
    """Factory: THE gateway-bridge of the test (one process, as in production), bootstrap connection `conn`
    on the live gateway, serving the test's other connections once the registry announces them."""
    started: list[ServiceProcess] = []

    def start(conn: str) -> None:
        started.append(start_service("ibkr_gateway_bridge", service_env(
            nats_url=nats_url, database_url=None, conn=conn, stream=names.stream, stream_subjects=names.subjects,
            gateway_url=live_gateway, ibkr_serve_connections=serves_the_tests(names))))

    try:
        yield start
    finally:
        for process in started:
            process.stop()


async def test_live_settings_need_a_live_login(sqlite_url, names, nats_client, start_registry, live_gateway,
                                               start_bridge):
    start_bridge(names.boot)  # the registry's bootstrap connection: the bridge learns the others from the registry
    async with start_registry(sqlite_url, compliance_timeout_s=1):
        live = create_body(names, live_gateway, environment="live")
        assert (await admin(nats_client, "connections.create", live))["ok"]
        assert (await until_served(nats_client, names.conn, "gateway-bridge"))["ok"]
        verified = await admin(nats_client, "connections.verify", {"user_id": OWNER, "connection": names.conn})
        checks = {c["check"]: c for c in verified["result"]["checks"]}
        assert verified["result"]["ok"] is True, checks
        assert "login is live" in checks["environment"]["detail"]
        assert checks["disclosures"]["skipped"] is True  # no compliance serves this connection here
        assert [a["account_id"] for a in verified["result"]["connection"]["accounts"]] == [LIVE_ACCOUNT]
        assert verified["result"]["connection"]["enabled"] is False  # disclosures not known to be acknowledged
        enabled = await admin(nats_client, "connections.settings", {
            "user_id": OWNER, "connection": names.conn,
            "accounts": [{"account_id": LIVE_ACCOUNT, "options_level": 3, "live_enabled": True}]})
        assert enabled["ok"], enabled
        (account,) = enabled["result"]["accounts"]
        assert (account["account_id"], account["options_level"], account["live_enabled"]) == (LIVE_ACCOUNT, 3, True)
        assert account["currency"] == "USD" and account["net_liquidation"]
        directory = await admin(nats_client, "connections.directory", {})
        mine = next(c for c in directory["result"]["connections"] if c["connection"] == names.conn)
        assert mine["accounts"][0]["live_enabled"] is True  # what compliance learns from the registry

        paper = create_body(names, live_gateway, conn=names.conn2, environment="paper")
        assert (await admin(nats_client, "connections.create", paper))["ok"]
        assert (await until_served(nats_client, names.conn2, "gateway-bridge"))["ok"]
        wrong = await admin(nats_client, "connections.verify", {"user_id": OWNER, "connection": names.conn2})
        checks = {c["check"]: c for c in wrong["result"]["checks"]}
        assert wrong["result"]["ok"] is False
        assert checks["environment"]["ok"] is False
        assert checks["environment"]["detail"] == ("the gateway's login is live (/iserver/accounts); "
                                                   "the connection is paper")
        assert "accounts" not in checks or checks["accounts"]["ok"]  # listed, but not read further
        assert wrong["result"]["connection"]["state"] == "unverified"
        assert wrong["result"]["connection"]["accounts"] == []


async def test_the_bootstrap_connection_takes_per_account_settings_once_verified(sqlite_url, names, nats_client,
                                                                                 start_registry, start_bridge):
    start_bridge(names.conn)  # the bootstrap connection of the whole stack (registry and bridge alike)
    async with start_registry(sqlite_url, connection=names.conn, user_id=OWNER, default_environment="live"):
        ref = {"user_id": OWNER, "connection": names.conn}
        before = await admin(nats_client, "connections.settings", {**ref, "accounts": [{"account_id": LIVE_ACCOUNT}]})
        assert before["error"]["details"][0]["field"] == "accounts.0.account_id"  # verify it first
        verified = await admin(nats_client, "connections.verify", ref)
        assert verified["result"]["ok"] is True
        assert (verified["result"]["connection"]["bootstrap"], verified["result"]["connection"]["enabled"]) == (
            True, True)
        levelled = await admin(nats_client, "connections.settings", {
            **ref, "accounts": [{"account_id": LIVE_ACCOUNT, "options_level": 2, "live_enabled": True}]})
        assert levelled["ok"], levelled
        assert levelled["result"]["accounts"][0]["options_level"] == 2
        moved = await admin(nats_client, "connections.update", {**ref, "gateway": {"host": "elsewhere", "port": 1}})
        assert moved["error"]["code"] == "CONFLICT"
