"""An unhealthy auth status or tickle forgets the session's pre-flights (accounts, snapshot streams)."""

from __future__ import annotations

from typing import Any

import pytest

AAPL = 265598
Bridge = Any
Sim = Any

pytestmark = pytest.mark.connected


@pytest.mark.parametrize("op", ["session.status", "session.tickle"])
async def test_unhealthy_answer_repeats_preflights_and_the_snapshot_preflight(bridge: Bridge, fresh: Sim,
                                                                             op: str) -> None:
    gateway = bridge.service.portal.gateway
    fresh("POST", "/prices", {str(AAPL): {"bid": 199.5, "ask": 200.5, "last": 200}})
    assert (await bridge.ok("marketdata.snapshot", {"conids": [AAPL]}))["complete"] is True
    epoch = gateway.epoch
    healthy = await bridge.ok(op, {})
    assert healthy["authenticated"] is True and gateway.epoch == epoch and gateway.accounts_ready  # nothing forgotten

    # the brokerage session ends (SSO stays): IBKR forgets the snapshot streams and the pre-flights
    fresh("POST", "/login", {"brokerage": False})
    unhealthy = await bridge.ok(op, {})
    assert unhealthy["authenticated"] is False
    assert gateway.epoch > epoch and not gateway.accounts_ready and not gateway.portfolio_ready

    fresh("POST", "/login")  # a new brokerage session, opened outside the bridge
    before = len(fresh.api_requests("/iserver/marketdata/snapshot"))
    snap = await bridge.ok("marketdata.snapshot", {"conids": [AAPL]})
    # the first snapshot of the new session only opens the stream: the bridge asked again after its pause
    assert snap["complete"] is True and snap["snapshots"][0]["conid"] == AAPL, snap
    assert len(fresh.api_requests("/iserver/marketdata/snapshot")) - before == 2
    assert fresh.api_requests("/iserver/accounts")


async def test_tickle_without_a_session_forgets_preflights(bridge: Bridge, fresh: Sim) -> None:
    gateway = bridge.service.portal.gateway
    # both pre-flights done in this test (an earlier test of the worker may have left either forgotten)
    await bridge.ok("accounts.list", {})
    await bridge.ok("accounts.summary", {"account_id": "DU1234567"})
    assert gateway.accounts_ready and gateway.portfolio_ready
    fresh("POST", "/logout")
    tickle = await bridge.request("session.tickle", {})
    # cpsim answers 401 (NOT_AUTHENTICATED) or {"error": "no session"} (no_session); either way pre-flights go
    assert tickle["ok"] is False or tickle["result"]["authenticated"] is False, tickle
    assert not gateway.accounts_ready and not gateway.portfolio_ready
