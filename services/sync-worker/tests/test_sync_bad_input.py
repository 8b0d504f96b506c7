"""Bad input through a whole sync: unreadable positions, an account the gateway stops listing.

Each case: a `sync.problem` event, the last good state kept, the worker still syncing, no false close.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from .conftest import request

pytestmark = pytest.mark.connected
ACCT = "DU1234567"
NEW_ACCT = "DU7654321"
STOCK = {"conid": 9100001, "symbol": "ZZST", "sec_type": "STK", "quantity": 100, "avg_price": 150, "market_price": 170}
OTHER = {"conid": 9100002, "symbol": "ZZOT", "sec_type": "STK", "quantity": -20, "avg_price": 40, "market_price": 38}
THIRD = {"conid": 9100004, "symbol": "ZZTH", "sec_type": "STK", "quantity": 5, "avg_price": 10, "market_price": 11}


def gateway_rows(cpsim_url: str) -> dict[int, dict[str, Any]]:
    """The positions page as cpsim renders it (IBKR's field names and types)."""
    with httpx.Client(base_url=cpsim_url, verify=False, timeout=10) as gw:
        gw.get("/v1/api/portfolio/accounts").raise_for_status()
        page = gw.get(f"/v1/api/portfolio/{ACCT}/positions/0")
        page.raise_for_status()
        return {row["conid"]: row for row in page.json()}


async def held(nc: Any, names: Any, account_id: str = ACCT) -> dict[int, Decimal]:
    got = await request(nc, names.subject("positions.get"), {"account_id": account_id})
    assert got["ok"] is True, got
    return {p["conid"]: Decimal(p["quantity"]) for p in got["result"]["positions"]}


async def test_unreadable_positions_are_a_sync_problem_keep_the_last_good_state_and_close_nothing(
    sim, names, events, nats_client, database_url, cpsim_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK, OTHER, THIRD])
    async with start_bridge(), start_worker(database_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        assert await held(nats_client, names) == {9100001: 100, 9100002: -20, 9100004: 5}
        rows = gateway_rows(cpsim_url)
        good = {**rows[9100001], "position": 120.0, "mktValue": 20400.0, "unrealizedPnl": 2400.0}
        garbage = {**rows[9100002], "position": "n/a", "mktPrice": "--", "avgCost": "x1.5"}  # strings of garbage
        new_type = {**rows[9100004], "position": {"amount": 5, "unit": "shares"}}  # a field with a new type
        sim("POST", f"/positions/{ACCT}", [])  # were the page believed, both others would be closed
        sim("POST", "/faults", {"path_glob": f"*/portfolio/{ACCT}/positions/0", "status": 200,
                                "body": [good, garbage, new_type], "count": 1})
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["ok"] is True, reply
        kinds = {p["kind"] for p in reply["result"]["problems"]}
        assert "position_unreadable" in kinds, reply
        [summary] = reply["result"]["accounts"]
        assert summary["complete"] is False and summary["closed"] == 0
        problem = await events.wait_for(lambda e: e["type"] == "sync.problem"
                                        and e["payload"]["kind"] == "position_unreadable")
        assert problem["account_id"] == ACCT and "2 position(s)" in problem["payload"]["message"]
        # the readable entry is still taken, the unreadable ones keep their last good state
        assert await held(nats_client, names) == {9100001: 120, 9100002: -20, 9100004: 5}
        assert events.of("positions.closed") == []
        # the worker is alive: the next complete read (no fault left) closes them for real
        again = await request(nats_client, names.subject("sync.trigger"), {})
        assert again["ok"] is True and again["result"]["accounts"][0]["closed"] == 3, again
        assert await held(nats_client, names) == {}


async def test_unreadable_figures_of_a_readable_position_keep_the_last_good_values(
    sim, names, events, nats_client, database_url, cpsim_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK, OTHER])
    async with start_bridge(), start_worker(database_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        rows = gateway_rows(cpsim_url)
        garbled = {**rows[9100001], "mktPrice": "--", "mktValue": {"amount": 17000}, "unrealizedPnl": "abc",
                   "avgCost": "?"}
        sim("POST", "/faults", {"path_glob": f"*/portfolio/{ACCT}/positions/0", "status": 200,
                                "body": [garbled, rows[9100002]], "count": 1})
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["ok"] is True, reply
        [problem] = [p for p in reply["result"]["problems"] if p["kind"] == "position_figures_unreadable"]
        [lost] = problem["details"]["positions"]
        assert lost["conid"] == 9100001
        assert sorted(lost["fields"]) == ["avg_cost", "market_price", "market_value", "unrealized_pnl"]
        assert reply["result"]["accounts"][0]["changed"] == 0
        await events.wait_for(lambda e: e["type"] == "sync.problem"
                              and e["payload"]["kind"] == "position_figures_unreadable")
        got = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT})
        stock = next(p for p in got["result"]["positions"] if p["conid"] == 9100001)
        figures = [Decimal(stock[f]) for f in ("market_price", "market_value", "unrealized_pnl", "avg_cost")]
        assert figures == [170, 17000, 2000, 150]
        assert events.of("positions.changed") == [] and events.of("positions.closed") == []


async def test_an_account_the_gateway_stops_listing_is_a_sync_problem_and_keeps_its_rows(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [STOCK, OTHER])
    async with start_bridge(), start_worker(database_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        assert await held(nats_client, names) == {9100001: 100, 9100002: -20}
        # a new gateway session that lists only another account
        sim("POST", "/reset", {"accounts": [{"id": NEW_ACCT}]})
        sim("POST", "/market", {"walk": False})
        sim("POST", "/limits", {"enabled": False})
        sim("POST", f"/positions/{NEW_ACCT}", [THIRD])
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["ok"] is True, reply
        missing = [p for p in reply["result"]["problems"] if p["kind"] == "account_missing"]
        assert [p["account_id"] for p in missing] == [ACCT], reply
        assert [a["account_id"] for a in reply["result"]["accounts"]] == [NEW_ACCT]  # the round went on
        problem = await events.wait_for(lambda e: e["type"] == "sync.problem"
                                        and e["payload"]["kind"] == "account_missing")
        assert problem["account_id"] == ACCT
        assert await held(nats_client, names) == {9100001: 100, 9100002: -20}
        assert await held(nats_client, names, NEW_ACCT) == {9100004: 5}
        account = await request(nats_client, names.subject("account.get"), {"account_id": ACCT})
        assert account["ok"] is True, account  # its summary is kept too
        assert events.of("positions.closed") == []
