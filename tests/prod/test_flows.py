"""The end-to-end flows on the production topology: every service under its own NATS user and inbox, on
PostgreSQL as the app role, the stream provisioned beforehand; the trading app connects as `client`."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from ibkr_devstack.prod import ProdStack

from .prodkit import ACCOUNT, SERVICES, TEST_CONNECTION, connected

pytestmark = [pytest.mark.connected, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]
AAPL = 265598
USER = "alice"


def _order(client_order_id: str) -> dict[str, Any]:
    """LMT BUY 1 AAPL @ 230, near cpsim's price (no question to answer)."""
    return {
        "client_order_id": client_order_id, "user_id": USER, "account_id": ACCOUNT, "environment": "paper",
        "instrument": {"conid": AAPL}, "side": "BUY", "quantity": "1", "order_type": "LMT",
        "limit_price": "230.00", "tif": "DAY", "position_effect": "open",
    }


def _cpsim_orders(prod: ProdStack, client_order_id: str) -> list[dict[str, Any]]:
    state = httpx.get(f"{prod.info()['gateway_url']}/sim/state", verify=False, timeout=10).json()
    return [o for o in state.get("orders") or [] if isinstance(o, dict) and o.get("cOID") == client_order_id]


async def _submit_one(client: Any) -> str:
    """Acknowledge, sync, and submit one order as the trading app; its client_order_id."""
    ack = await client.call("compliance.acknowledge",
                            {"user_id": USER, "disclosures": ["options_risk", "day_trading_risk"]})
    assert ack["ok"], ack
    synced = await client.call("sync.trigger", {"account_id": ACCOUNT}, timeout=60)
    assert synced["ok"], synced
    client_order_id = f"prod-{time.time_ns()}"
    reply = await client.call("orders.submit", _order(client_order_id), timeout=60)
    assert reply["ok"], reply
    assert reply["result"]["status"] == "submitted" and reply["result"]["order_id"], reply
    return client_order_id


async def test_an_order_submitted_through_compliance_reaches_the_gateway(prod: ProdStack) -> None:
    async with connected(prod, "client") as client:
        client_order_id = await _submit_one(client)
    assert len(_cpsim_orders(prod, client_order_id)) == 1


async def test_the_sync_worker_answers_positions_after_a_sync(prod: ProdStack) -> None:
    async with connected(prod, "client") as client:
        synced = await client.call("sync.trigger", {"account_id": ACCOUNT}, timeout=60)
        assert synced["ok"], synced
        positions = await client.call("positions.get", {"account_id": ACCOUNT})
        assert positions["ok"], positions
        assert positions["result"]["account_id"] == ACCOUNT
        assert positions["result"]["synced_at"], positions
        account = await client.call("account.get", {"account_id": ACCOUNT})
        assert account["ok"] and account["result"]["options_level"] == 2, account


async def test_the_session_keeper_reports_the_session(prod: ProdStack) -> None:
    async with connected(prod, "client") as client:
        status = await client.call("session.status", {})
    assert status["ok"], status
    assert status["result"]["authenticated"] is True, status


async def test_audit_stored_the_events_and_the_chain_verifies(prod: ProdStack) -> None:
    async with connected(prod, "client") as client:
        client_order_id = await _submit_one(client)  # this test's own order: tests may run in any order
        deadline = time.monotonic() + 20
        while True:
            found = await client.call("audit.query", {"type_prefix": "orders.submitted", "limit": 500})
            assert found["ok"], found
            mine = [e for e in found["result"]["events"] if e["payload"].get("client_order_id") == client_order_id]
            if mine or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert mine, "the submitted order's event never reached the audit log"
        assert {e["source"] for e in found["result"]["events"]} == {"compliance"}
        everything = await client.call("audit.query", {"limit": 500})
        sources = {event["source"] for event in everything["result"]["events"]}
        assert {"compliance", "gateway-bridge", "session-keeper"} <= sources, sources
        verified = await client.call("audit.verify", {})
    assert verified["ok"] and verified["result"]["ok"], verified
    assert verified["result"]["events_checked"] >= len(everything["result"]["events"])


def test_no_service_met_a_permission_violation(prod: ProdStack) -> None:
    """Least privilege that breaks nothing: the server refused no service anything during the flows."""
    violations = [line for line in prod.log("nats").splitlines() if "Violation" in line]
    from_services = [line for line in violations if TEST_CONNECTION not in line]
    assert from_services == [], "\n".join(from_services)
    for service in SERVICES:
        assert re.search(r"permissions violation", prod.log(service), re.IGNORECASE) is None, service


def test_every_service_is_ready_on_its_operator_endpoint(prod: ProdStack) -> None:
    for service, url in prod.http_urls().items():
        ready = httpx.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 200, (service, ready.text)
