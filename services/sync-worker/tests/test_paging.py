"""orders.get and positions.get page by cursor over NATS: every order once, a bounded page, a bad cursor named."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import request

pytestmark = pytest.mark.connected
ACCT = "DU1234567"
ORDERS = 120
POSITIONS = 30


async def walk(nats_client: Any, subject: str, body: dict[str, Any], items: str) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        got = await request(nats_client, subject, {**body, **({"cursor": cursor} if cursor else {})})
        assert got["ok"] is True, got
        pages.append(got["result"][items])
        cursor = got["result"]["next_cursor"]
        if cursor is None:
            return pages


async def test_orders_and_positions_are_walked_page_by_page(sim, names, nats_client, sqlite_url, start_bridge,
                                                            start_worker):
    sim("POST", f"/trades/{ACCT}", [
        {"conid": 9100001, "symbol": "ZZST", "side": "BUY", "quantity": 1, "price": 150, "order_id": str(700000 + i)}
        for i in range(ORDERS)
    ])
    sim("POST", f"/positions/{ACCT}", [
        {"conid": 9200000 + i, "symbol": f"ZP{i:03d}", "sec_type": "STK", "quantity": 1, "avg_price": 10,
         "market_price": 11} for i in range(POSITIONS)
    ])
    async with start_bridge(), start_worker(sqlite_url):
        assert (await request(nats_client, names.subject("sync.trigger"), {}))["ok"]
        subject = names.subject("orders.get")
        pages = await walk(nats_client, subject, {"account_id": ACCT, "page_size": 50}, "orders")
        assert [len(p) for p in pages] == [50, 50, 20]
        ids = [o["order_id"] for p in pages for o in p]
        assert sorted(ids) == sorted(str(700000 + i) for i in range(ORDERS)) and len(set(ids)) == ORDERS

        old = await request(nats_client, subject, {"account_id": ACCT, "limit": 7})  # the deprecated name
        assert len(old["result"]["orders"]) == 7 and old["result"]["next_cursor"]
        default = await request(nats_client, subject, {"account_id": ACCT})  # a full page: all 120, as before paging
        assert len(default["result"]["orders"]) == ORDERS and default["result"]["next_cursor"] is None

        positions = await walk(nats_client, names.subject("positions.get"), {"account_id": ACCT, "page_size": 12},
                               "positions")
        assert [len(p) for p in positions] == [12, 12, 6]
        symbols = [p["symbol"] for page in positions for p in page]
        assert symbols == sorted(symbols) and len(symbols) == POSITIONS

        bad = await request(nats_client, subject, {"account_id": ACCT, "cursor": "not-a-cursor"})
        assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
        assert [d["field"] for d in bad["error"]["details"]] == ["cursor"], bad
        shapeless = await request(nats_client, subject, {"account_id": ACCT, "cursor": "e30"})  # base64 of {}
        assert shapeless["ok"] is False and shapeless["error"]["details"][0]["field"] == "cursor"
        crossed = await request(nats_client, names.subject("positions.get"),
                                {"account_id": ACCT, "cursor": old["result"]["next_cursor"]})
        assert crossed["ok"] is False and crossed["error"]["details"][0]["field"] == "cursor"
