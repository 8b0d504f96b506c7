"""One cpsim process, several gateways: each its own login, session, accounts, orders, limits and request log."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from cpsim.testing import CONIDS, CpsimHandle, place_confirmed, start_cpsim

LIVE_ACCOUNT = "U7654321"


@pytest.fixture(scope="module")
def two() -> Iterator[CpsimHandle]:
    with start_cpsim(gateways=["paper:0", f"live:0:{LIVE_ACCOUNT}"], extra_args=["--no-walk"]) as handle:
        yield handle


@pytest.fixture
def paper(two: CpsimHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=two.gateways["paper"].url, verify=False, timeout=10) as c:
        assert c.post("/sim/reset").status_code == 200
        yield c


@pytest.fixture
def live(two: CpsimHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=two.gateways["live"].url, verify=False, timeout=10) as c:
        assert c.post("/sim/reset").status_code == 200
        yield c


def paths(client: httpx.Client) -> list[str]:
    return [r["path"] for r in client.get("/sim/state").json()["requests"]]


def test_each_gateway_listens_on_its_own_port_with_its_own_login(two: CpsimHandle, paper: httpx.Client,
                                                                 live: httpx.Client) -> None:
    assert set(two.gateways) == {"paper", "live"} and two.url == two.gateways["paper"].url
    assert two.gateways["paper"].port != two.gateways["live"].port
    p, lv = paper.get("/v1/api/sso/validate").json(), live.get("/v1/api/sso/validate").json()
    assert (p["USER_NAME"], p["LOGIN_TYPE"]) == ("paperuser1", 2)
    assert (lv["USER_NAME"], lv["LOGIN_TYPE"]) == ("liveuser1", 1)
    assert paper.get("/v1/api/iserver/accounts").json()["accounts"] == ["DU1234567"]
    accounts = live.get("/v1/api/iserver/accounts").json()
    assert accounts["accounts"] == [LIVE_ACCOUNT] and accounts["isPaper"] is False
    assert live.get("/sim/state").json()["gateway"] == {"name": "live", "username": "liveuser1", "paper": False,
                                                        "accounts": [LIVE_ACCOUNT]}
    assert paper.post("/v1/api/tickle").json()["session"] != live.post("/v1/api/tickle").json()["session"]


def test_an_order_on_one_gateway_never_reaches_the_other(paper: httpx.Client, live: httpx.Client) -> None:
    for c in (paper, live):
        c.get("/v1/api/iserver/accounts")
    order = {"conid": CONIDS["AAPL"], "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 5,
             "cOID": "only-on-live"}
    status, body = place_confirmed(live, order, account=LIVE_ACCOUNT)
    assert status == 200 and body[0]["order_id"]
    live_state, paper_state = live.get("/sim/state").json(), paper.get("/sim/state").json()
    assert [o["cOID"] for o in live_state["orders"]] == ["only-on-live"]
    assert f"/v1/api/iserver/account/{LIVE_ACCOUNT}/orders" in paths(live)
    # the paper gateway's log holds only its own calls: no order, no path of the live account
    assert paper_state["orders"] == [] and paper_state["order_book"] == []
    assert paths(paper) == ["/v1/api/iserver/accounts"]
    assert paper_state["accounts"]["DU1234567"]["positions"] == []
    assert [p["quantity"] for p in live_state["accounts"][LIVE_ACCOUNT]["positions"]] == [5]


def test_sim_controls_act_on_their_gateway_only(paper: httpx.Client, live: httpx.Client) -> None:
    paper.post("/sim/logout")
    paper.post("/sim/limits", json={"enabled": True, "penalty_s": 600})
    for _ in range(2):
        paper.post("/v1/api/tickle")  # 1 req/s: the second puts the paper caller in its penalty box
    assert paper.post("/v1/api/tickle").status_code == 429
    assert live.post("/v1/api/tickle").status_code == 200  # its own session and buckets
    assert live.post("/v1/api/iserver/auth/status").json()["authenticated"] is True
    paper.post("/sim/market_hours", json={"mode": "exchange"})
    paper.post("/sim/clock", json={"now": "2026-03-01T17:00:00Z"})
    assert live.get("/sim/market_hours").json()["mode"] == "always"  # tests start with the market open
    assert live.get("/sim/clock").json()["offset_s"] == pytest.approx(0, abs=5)


def test_gateway_specs_are_checked() -> None:
    for args, message in ((["--port", "5000", "--gateway", "a:5001"], "exclude each other"),
                          (["--gateway", "a:5001", "--gateway", "a:5002"], "names must differ"),
                          (["--gateway", "a:5001", "--gateway", "b:5001"], "ports must differ"),
                          (["--gateway", "paper"], "expected NAME:PORT")):
        done = subprocess.run([sys.executable, "-m", "cpsim", *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 2 and message in done.stderr, done.stderr
