"""Positions over several gateway pages (100 per page), and an option position end to end."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from .conftest import request

pytestmark = pytest.mark.connected
ACCT = "DU1234567"
BASE = 9_500_000


def many(n: int, first_quantity: int = 10) -> list[dict[str, Any]]:
    return [{"conid": BASE + i, "symbol": f"ZP{i:03d}", "sec_type": "STK", "quantity": first_quantity if i == 0
             else 1 + i, "avg_price": 20, "market_price": 21} for i in range(n)]


async def stored(nc: Any, names: Any) -> dict[int, Decimal]:
    got = await request(nc, names.subject("positions.get"), {"account_id": ACCT, "page_size": 500})
    assert got["ok"] is True and got["result"]["next_cursor"] is None, got  # every position on the one page
    return {p["conid"]: Decimal(p["quantity"]) for p in got["result"]["positions"]}


async def test_every_page_is_stored_and_a_failed_second_page_closes_nothing(
    sim, names, events, nats_client, database_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", many(250))
    async with start_bridge(), start_worker(database_url):
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["ok"] is True and reply["result"]["positions"] == 250, reply
        assert reply["result"]["accounts"][0]["complete"] is True
        held = await stored(nats_client, names)
        assert sorted(held) == [BASE + i for i in range(250)]
        assert held[BASE + 249] == 250  # the last position, on the third page
        for page in (0, 1, 2):
            assert sim.requests_to(f"/portfolio/{ACCT}/positions/{page}") >= 1
        # page 0 (full) answers and shows a change; page 1 fails every retry
        sim("POST", f"/positions/{ACCT}", many(250, first_quantity=11))
        sim("POST", "/faults", {"path_glob": f"*/portfolio/{ACCT}/positions/1", "status": 500, "count": 10})
        failed = await request(nats_client, names.subject("sync.trigger"), {})
        assert failed["ok"] is True, failed
        [problem] = [p for p in failed["result"]["problems"] if p["kind"] == "positions_page_failed"]
        assert problem["details"]["page"] == 1
        [summary] = failed["result"]["accounts"]
        assert (summary["complete"], summary["closed"], summary["changed"]) == (False, 0, 1)
        held = await stored(nats_client, names)
        assert len(held) == 250 and held[BASE] == 11
        assert events.of("positions.closed") == []
        assert len(events.of("positions.opened")) == 250


OPTION = {"conid": 9_600_001, "symbol": "SPY", "sec_type": "OPT", "quantity": -3, "avg_price": 2.5,
          "market_price": 3.1, "expiry": "20270115", "strike": 440.5, "right": "P", "multiplier": 100,
          "underlying": "SPY"}


async def test_an_option_position_keeps_expiry_strike_right_multiplier_and_underlying(
    sim, names, events, nats_client, sqlite_url, start_bridge, start_worker
):
    sim("POST", f"/positions/{ACCT}", [OPTION])
    async with start_bridge(), start_worker(sqlite_url):
        reply = await request(nats_client, names.subject("sync.trigger"), {})
        assert reply["ok"] is True and reply["result"]["positions"] == 1, reply
        assert not [p for p in reply["result"]["problems"] if p["kind"] == "pnl_mismatch"], reply
        got = await request(nats_client, names.subject("positions.get"), {"account_id": ACCT})
        [p] = got["result"]["positions"]
        assert p["conid"] == 9_600_001 and p["sec_type"] == "OPT"
        assert date.fromisoformat(p["expiry"]) == date(2027, 1, 15)
        assert Decimal(p["strike"]) == Decimal("440.5") and p["right"] == "P"
        assert Decimal(p["multiplier"]) == 100
        assert p["underlying_conid"] == 756733 and p["underlying_symbol"] == "SPY"  # cpsim's SPY
        assert Decimal(p["quantity"]) == -3 and Decimal(p["avg_price"]) == Decimal("2.5")
        assert Decimal(p["avg_cost"]) == 250 and Decimal(p["market_value"]) == -930
        assert Decimal(p["unrealized_pnl"]) == -180  # (3.1 - 2.5) x -3 x 100
        opened = await events.wait_for(lambda e: e["type"] == "positions.opened")
        position = opened["payload"]["position"]
        assert (position["expiry"], position["right"], Decimal(position["strike"])) == ("2027-01-15", "P",
                                                                                        Decimal("440.5"))
        assert position["underlying_conid"] == 756733
