"""A known client_order_id keeps its recorded result when compliance restarts and the bridge is gone; a new
one is answered at once with a retryable error, nothing final recorded, and sent when the bridge is back.

Its own module: the test stops this module's gateway-bridge, and starts it again.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ibkr_testkit.processes import start_service

from .compliance_stack import Stack, acknowledged, call, coid, order, stack, start_compliance, synced, wait_until

pytestmark = [pytest.mark.connected, pytest.mark.timeout(180)]
__all__ = ["stack", "start_compliance"]


async def session_usable(nc: Any, stack: Stack) -> bool:
    """Whether the session-keeper reports the brokerage session usable."""
    reply = await call(nc, stack, "session.status", {}, timeout=5)
    return bool(reply["ok"] and reply["result"]["authenticated"])


async def test_repeat_after_a_restart_with_the_bridge_down_returns_the_recorded_order(
    nats_client: Any, stack: Stack, start_compliance: Any, sqlite_url: str
) -> None:
    cid, new = coid("down"), coid("new")
    async with start_compliance(sqlite_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        first = await call(nats_client, stack, "orders.submit", order(cid))
    bridge = next(p for p in stack.processes if p.module == "ibkr_gateway_bridge")
    bridge.stop()
    async with start_compliance(sqlite_url):  # a fresh process: no contract cache
        again = await call(nats_client, stack, "orders.submit", order(cid))
        started = time.monotonic()
        refused = await call(nats_client, stack, "orders.submit", order(new))
        waited = time.monotonic() - started
        stack.processes[stack.processes.index(bridge)] = start_service("ibkr_gateway_bridge", stack.env(None))
        # the session-keeper saw the gateway down if it tickled meanwhile (every 5 s); until its next tickle
        # through the new bridge it says so, and compliance answers a retryable NOT_AUTHENTICATED: wait for it
        await wait_until(lambda: session_usable(nats_client, stack), 30, "the keeper to see the session again")
        retried = await call(nats_client, stack, "orders.submit", order(new))

    assert first["ok"] and first["result"]["order_id"], first
    assert again["ok"] and again["result"]["order_id"] == first["result"]["order_id"], again
    assert refused["ok"] is False and refused["error"]["code"] == "GATEWAY_UNAVAILABLE", refused
    assert refused["error"]["retryable"] is True and waited < 5, (refused, waited)  # no responders: at once
    assert retried["ok"] and retried["result"]["status"] == "submitted", retried  # decided afresh, then sent
    assert len(stack.received(cid)) == 1 and len(stack.received(new)) == 1
