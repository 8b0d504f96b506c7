"""`make run` plus `ibkr connections …`: a second connection registered at run time, verified, acknowledged and
traded, with no restart; its order reaches only its own gateway, and another user may not touch it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from ibkr_client import Forbidden, IbkrClient
from ibkr_client.cli.output import EXIT_FORBIDDEN

from .stack_helpers import AAPL, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OWNER = "alice"
SECOND = "second"
SPARE_ACCOUNT = "DU7654321"
USERNAME = "spareuser1"


def spare_url(stack: Stack) -> str:
    return str(stack.info["sim_gateways"]["spare"])


def sim(url: str, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{url}/sim/{path}", json=body, verify=False, timeout=10)
    response.raise_for_status()
    return response.json()


def cli_json(stack: Stack, *args: str, user: str = OWNER) -> Any:
    done = stack.ibkr("--user", user, *args, "--json")
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def test_a_second_connection_is_set_up_verified_acknowledged_and_traded_at_run_time(stack: Stack) -> None:
    spare = spare_url(stack)
    sim(spare, "POST", "market_hours", {"mode": "always"})
    sim(spare, "POST", "market", {"walk": False})
    sim(spare, "POST", "prices", {"AAPL": AAPL})
    port = spare.rsplit(":", 1)[1]

    created = cli_json(stack, "connections", "create", SECOND, "--environment", "paper", "--host", "localhost",
                       "--port", port, "--username", USERNAME)
    assert (created["state"], created["enabled"], created["username_set"]) == ("unverified", False, True)
    assert USERNAME not in json.dumps(created)

    verified = cli_json(stack, "connections", "verify", SECOND)
    assert verified["ok"], verified["checks"]
    assert [a["account_id"] for a in verified["connection"]["accounts"]] == [SPARE_ACCOUNT]

    missing = verified["connection"]["missing_disclosures"]
    assert missing, "a new user has disclosures to acknowledge"
    enabled = cli_json(stack, "connections", "acknowledge", SECOND, *missing)
    assert (enabled["state"], enabled["enabled"], enabled["missing_disclosures"]) == ("enabled", True, [])

    listed = cli_json(stack, "connections", "list")
    assert SECOND in [c["connection"] for c in listed["connections"]]

    refused = stack.ibkr("--user", "bob", "connections", "get", SECOND)
    assert refused.returncode == EXIT_FORBIDDEN and "FORBIDDEN" in refused.stderr + refused.stdout

    async def trade() -> dict[str, Any]:
        async with IbkrClient(stack.nats_url, SECOND, stack_file=None) as ib:
            async def synced() -> bool:
                try:
                    return (await ib.account.get(SPARE_ACCOUNT)).account_id == SPARE_ACCOUNT
                except Exception:
                    return False

            for _ in range(150):  # the sync-worker picked the connection up from the registry's event
                if await synced():
                    break
                await asyncio.sleep(0.2)
            result = await ib.orders.submit(account_id=SPARE_ACCOUNT, user_id=OWNER, symbol="AAPL", side="BUY",
                                            quantity=1, order_type="LMT", limit_price="99.00",
                                            client_order_id="second-conn-1")
            with pytest.raises(Forbidden):
                await ib.orders.check(account_id=SPARE_ACCOUNT, user_id="bob", symbol="AAPL", side="BUY",
                                      quantity=1, order_type="LMT", limit_price="99.00")
            return result.model_dump(mode="json")

    result = asyncio.run(trade())
    assert result["status"] in ("submitted", "presubmitted", "pre_submitted"), result
    on_spare = wait_until(lambda: [o for o in sim(spare, "GET", "state")["orders"] if o.get("cOID") == "second-conn-1"])
    assert on_spare[0]["sim"]["account"] == SPARE_ACCOUNT
    on_paper = [o for o in stack.sim("GET", "state")["orders"] if o.get("cOID") == "second-conn-1"]
    assert on_paper == [], "the bootstrap gateway never sees the second connection's order"
