"""Compliance decides on every synced position and order, however many pages the sync-worker serves them in."""

from __future__ import annotations

from typing import Any

import pytest

from ibkr_common.bridge_client import BridgeClient
from ibkr_common.messages.sync import MAX_PAGE_SIZE
from ibkr_common.rpc import Rpc
from ibkr_common.service import make_broker
from ibkr_common.settings import CommonSettings
from ibkr_common.subjects import Subjects
from ibkr_compliance.instruments import Instruments
from ibkr_compliance.state import StateGatherer

from .compliance_stack import ACCOUNT, Stack, call, stack, synced

pytestmark = [pytest.mark.connected, pytest.mark.timeout(180)]
__all__ = ["stack"]
#: More than one page of each (a page holds at most MAX_PAGE_SIZE).
MANY = MAX_PAGE_SIZE + 20


async def test_the_gatherer_walks_every_page_of_positions_and_orders(nats_client: Any, stack: Stack) -> None:
    stack.sim("POST", f"/positions/{ACCOUNT}", [
        {"conid": 9300000 + i, "symbol": f"ZQ{i:04d}", "sec_type": "STK", "quantity": 1, "avg_price": 10,
         "market_price": 11} for i in range(MANY)
    ])
    stack.sim("POST", f"/trades/{ACCOUNT}", [
        {"conid": 9300000, "symbol": "ZQ0000", "side": "BUY", "quantity": 1, "price": 10, "order_id": str(810000 + i)}
        for i in range(MANY)
    ])
    await synced(nats_client, stack)
    first = await call(nats_client, stack, "orders.get", {"account_id": ACCOUNT, "page_size": MAX_PAGE_SIZE})
    assert first["result"]["next_cursor"] is not None  # the sync-worker did need a second page

    broker = make_broker(CommonSettings(nats_url=stack.nats_url, connection=stack.conn), "compliance-test")
    await broker.connect()
    try:
        subjects = Subjects(stack.conn)
        bridge = BridgeClient(broker, subjects, timeout_s=10)
        gatherer = StateGatherer(Rpc(broker), bridge, subjects, Instruments(bridge, 10), environment="paper",
                                 live_accounts=frozenset(), timeout_s=10)
        pieces = await gatherer.pieces(ACCOUNT)
    finally:
        await broker.stop()
    assert pieces.positions is not None and pieces.orders is not None
    held = {p.conid for p in pieces.positions.positions}
    assert {9300000 + i for i in range(MANY)} <= held
    seen = [o.order_id for o in pieces.orders.orders]
    assert {str(810000 + i) for i in range(MANY)} <= set(seen) and len(seen) == len(set(seen))
    assert pieces.positions.next_cursor is None and pieces.orders.next_cursor is None
