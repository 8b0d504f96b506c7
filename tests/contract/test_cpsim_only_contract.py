"""Scenarios that need to drive the gateway into a state (logout, idle, competing, limits): cpsim only.

They assert the same Client Portal behaviour the live suite would see, using /sim to get there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conftest import Gateway


def test_no_session_is_401_everywhere_but_auth_status(sim_gw: Gateway, sim: httpx.Client) -> None:
    sim.post("/logout")
    assert sim_gw.get("/portfolio/accounts").status_code == 401
    assert sim_gw.post("/tickle").status_code == 401
    assert sim_gw.post("/iserver/auth/status").json()["authenticated"] is False


def test_read_only_session_needs_ssodh_init_for_iserver(sim_gw: Gateway, sim: httpx.Client) -> None:
    sim.post("/login", json={"brokerage": False})
    assert "no bridge" in sim_gw.get("/iserver/accounts").json()["error"]
    sim_gw.post("/iserver/auth/ssodh/init", json={"publish": True, "compete": True})
    assert sim_gw.get("/iserver/accounts").status_code == 200


def test_competing_session_then_takeover(sim_gw: Gateway, sim: httpx.Client) -> None:
    sim.post("/competing", json={"competing": True})
    assert sim_gw.post("/iserver/auth/status").json()["competing"] is True
    sim_gw.post("/iserver/auth/ssodh/init", json={"publish": True, "compete": True})
    assert sim_gw.post("/iserver/auth/status").json()["authenticated"] is True


def test_idle_gateway_logs_out_after_five_minutes(sim_gw: Gateway, sim: httpx.Client) -> None:
    sim.post("/clock", json={"advance_s": 299})
    assert sim_gw.post("/tickle").status_code == 200
    sim.post("/clock", json={"advance_s": 301})
    assert sim_gw.post("/tickle").status_code == 401


def test_brokerage_session_ends_at_regional_midnight(sim_gw: Gateway, sim: httpx.Client) -> None:
    sim.post("/clock", json={"now": "2026-06-01T03:59:00Z"})  # 23:59 New York (EDT)
    sim.post("/login")
    sim.post("/clock", json={"advance_s": 120})
    status = sim_gw.post("/iserver/auth/status").json()
    assert (status["authenticated"], status["connected"]) == (False, True)


def test_rate_limit_is_429_empty_then_penalty_box(sim_gw: Gateway, sim: httpx.Client) -> None:
    sim_gw.prepare()
    sim.post("/limits", json={"enabled": True, "penalty_s": 600})
    assert sim_gw.get("/iserver/account/orders").status_code == 200
    r = sim_gw.get("/iserver/account/orders")
    assert r.status_code == 429 and r.content == b""
    assert sim_gw.post("/iserver/auth/status").status_code == 429


def test_orders_reach_the_gateway_with_their_coid(sim_gw: Gateway, sim: httpx.Client) -> None:
    sim_gw.prepare()
    sim_gw.place({"conid": 265598, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1, "cOID": "c-1"})
    received = sim.get("/state").json()["orders"]
    assert [o["cOID"] for o in received] == ["c-1"]


def test_filled_market_order_moves_position_after_invalidate(sim_gw: Gateway, sim: httpx.Client) -> None:
    account = sim_gw.prepare()
    sim_gw.place({"conid": 756733, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 7})
    sim_gw.post(f"/portfolio/{account}/positions/invalidate")
    rows = sim_gw.get(f"/portfolio/{account}/positions/0").json()
    assert [(r["conid"], r["position"]) for r in rows] == [(756733, 7.0)]
