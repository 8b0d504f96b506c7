"""Rate limits (429, empty body, penalty box) and injected faults over real HTTPS."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest


def test_sequential_calls_are_paced_to_ten_a_second_never_refused(http: httpx.Client) -> None:
    """The issue's third-party client: one call at a time, as fast as it can, latency off (the worst case)."""
    http.post("/sim/latency", json={"enabled": False})
    http.post("/sim/limits", json={"enabled": True, "penalty_s": 600})
    started = time.monotonic()
    codes = [http.post("/v1/api/iserver/auth/status").status_code for _ in range(25)]
    elapsed = time.monotonic() - started
    assert codes == [200] * 25
    assert elapsed >= 1.3  # 10 at once from the bucket, then one per 100 ms: the gateway paced them
    limits = http.get("/sim/state").json()["limits"]
    assert limits["violations"] == 0 and limits["paced"] >= 14 and limits["penalty_until"] == {}


def test_a_burst_above_the_limit_is_429_with_empty_body_and_penalty(http: httpx.Client) -> None:
    http.post("/sim/limits", json={"enabled": True, "penalty_s": 600})
    http.post("/sim/clock", json={"now": "2026-03-03T15:00:00Z"})
    http.post("/sim/login")  # a session on the moved clock

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
        async with httpx.AsyncClient(base_url=str(http.base_url), verify=False, timeout=20, limits=limits) as c:
            return await asyncio.gather(*(c.post("/v1/api/iserver/auth/status") for _ in range(40)))

    answers = asyncio.run(burst())
    refused = [r for r in answers if r.status_code == 429]
    assert refused and all(r.content == b"" and "retry-after" not in r.headers for r in refused)
    assert sum(r.status_code == 200 for r in answers) >= 10
    r = http.get("/v1/api/iserver/accounts")  # even one polite call now: the caller is in the penalty box
    assert r.status_code == 429 and r.content == b""
    assert http.get("/sim/state").status_code == 200  # /sim is never limited
    assert http.get("/sim/state").json()["limits"]["violations"] >= 1
    http.post("/sim/clock", json={"advance_s": 601})
    http.post("/sim/login")
    assert http.get("/v1/api/iserver/accounts").status_code == 200


def test_live_orders_twice_within_five_seconds_is_429(ready: httpx.Client) -> None:
    ready.post("/sim/limits", json={"enabled": True, "penalty_s": 0})
    assert ready.get("/v1/api/iserver/account/orders").status_code == 200
    assert ready.get("/v1/api/iserver/account/orders").status_code == 429
    ready.post("/sim/clock", json={"advance_s": 5.5})
    assert ready.get("/v1/api/iserver/account/orders").status_code == 200


def test_reset_clears_the_penalty_box(http: httpx.Client) -> None:
    http.post("/sim/limits", json={"enabled": True, "penalty_s": 600})
    for _ in range(3):
        http.post("/v1/api/tickle")
    assert http.post("/v1/api/tickle").status_code == 429
    http.post("/sim/reset")
    assert http.post("/v1/api/tickle").status_code == 200


def test_fault_answers_status_and_body_count_times(http: httpx.Client) -> None:
    http.post("/sim/faults", json={"path_glob": "/tickle", "status": 503, "body": {"error": "down"}, "count": 2})
    assert [http.post("/v1/api/tickle").status_code for _ in range(3)] == [503, 503, 200]


def test_fault_html_page_like_a_gateway_in_trouble(http: httpx.Client) -> None:
    http.post("/sim/faults", json={"path_glob": "/v1/api/iserver/*", "status": 502, "html": True})
    r = http.post("/v1/api/iserver/auth/status")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html") and "<html>" in r.text


def test_fault_drops_the_connection_without_a_response(http: httpx.Client) -> None:
    http.post("/sim/faults", json={"path_glob": "*/tickle", "drop_connection": True})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post("/v1/api/tickle")
    assert http.post("/v1/api/tickle").status_code == 200


def test_fault_delay_slows_the_answer(http: httpx.Client) -> None:
    http.post("/sim/faults", json={"path_glob": "/tickle", "delay_ms": 300})
    r = http.post("/v1/api/tickle")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.3


def test_request_log_records_time_method_path_status(http: httpx.Client) -> None:
    http.post("/v1/api/tickle")
    last = http.get("/sim/state").json()["requests"][-1]
    assert (last["method"], last["path"], last["status"]) == ("POST", "/v1/api/tickle", 200)
    assert last["t"].endswith("+00:00")


def test_fault_after_serves_the_order_then_loses_its_answer(http: httpx.Client) -> None:
    http.post("/sim/reset")
    http.get("/v1/api/iserver/accounts")
    http.post("/sim/faults", json={"path_glob": "/iserver/account/*/orders", "method": "POST", "after": True,
                                   "delay_ms": 50, "drop_connection": True})
    body = {"orders": [{"conid": 265598, "orderType": "LMT", "price": 230, "side": "BUY", "tif": "DAY",
                        "quantity": 1, "cOID": "lost-answer-1"}]}
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post("/v1/api/iserver/account/DU1234567/orders", json=body)
    received = [o for o in http.get("/sim/state").json()["orders"] if o.get("cOID") == "lost-answer-1"]
    assert [o["sim"]["outcome"] for o in received] == ["accepted"]
    again = http.post("/v1/api/iserver/account/DU1234567/orders", json=body)
    assert again.status_code == 200 and "Local order ID=lost-answer-1" in again.json()["error"]


def test_a_coid_is_refused_for_24_hours_then_free_again(http: httpx.Client) -> None:
    http.post("/sim/reset")
    http.get("/v1/api/iserver/accounts")
    body = {"orders": [{"conid": 265598, "orderType": "LMT", "price": 230, "side": "BUY", "tif": "GTC",
                        "quantity": 1, "cOID": "day-old-1"}]}
    assert "order_id" in http.post("/v1/api/iserver/account/DU1234567/orders", json=body).json()[0]
    http.post("/sim/clock", json={"advance_s": 23 * 3600})
    http.post("/sim/login")
    http.get("/v1/api/iserver/accounts")
    assert "already registered" in http.post("/v1/api/iserver/account/DU1234567/orders", json=body).json()["error"]
    http.post("/sim/clock", json={"advance_s": 3600 + 1})
    http.post("/sim/login")
    http.get("/v1/api/iserver/accounts")
    again = http.post("/v1/api/iserver/account/DU1234567/orders", json=body).json()
    assert isinstance(again, list) and "order_id" in again[0], again
