"""A known client_order_id keeps its recorded result when compliance restarts and the bridge is gone.

Its own module: the test stops this module's gateway-bridge.
"""

from __future__ import annotations

from typing import Any

import pytest

from .compliance_stack import Stack, acknowledged, call, coid, order, stack, start_compliance, synced

pytestmark = [pytest.mark.connected, pytest.mark.timeout(180)]
__all__ = ["stack", "start_compliance"]


async def test_repeat_after_a_restart_with_the_bridge_down_returns_the_recorded_order(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    cid = coid("down")
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        first = await call(nats_client, stack, "orders.submit", order(cid))
    bridge = next(p for p in stack.processes if p.module == "ibkr_gateway_bridge")
    bridge.stop()
    async with start_compliance(sqlite_url):  # a fresh process: no contract cache
        again = await call(nats_client, stack, "orders.submit", order(cid))
        unknown = await call(nats_client, stack, "orders.submit", order(coid("new")))

    assert first["ok"] and first["result"]["order_id"], first
    assert again["ok"] and again["result"]["order_id"] == first["result"]["order_id"], again
    assert unknown["ok"] is False and unknown["error"]["code"] == "GATEWAY_UNAVAILABLE", unknown
    assert len(stack.received(cid)) == 1
