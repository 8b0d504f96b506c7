"""One Client Portal scenario suite, two backends: cpsim (always) and a real gateway (IBKR_CONTRACT_GATEWAY_URL).

The live backend is marked `live` and skipped unless the variable is set (the one allowed skip).
Scenarios that need the simulator's control API take the `sim` fixture, which only cpsim provides.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cpsim.testing import CpsimHandle, start_cpsim

PACED = {
    "/iserver/account/orders": 5.2,
    "/iserver/account/trades": 5.2,
    "/iserver/account/pnl/partitioned": 5.2,
    "/portfolio/accounts": 5.2,
    "/portfolio/subaccounts": 5.2,
    "/tickle": 1.1,
    "/sso/validate": 61.0,
}


class Gateway:
    """A minimal Client Portal client for the scenarios (httpx, verification off, IBKR's paths).

    With `pace`, calls keep to IBKR's limits across every client of the run (class-level clock):
    a violation would put the caller in the gateway's 10-15 minute penalty box.
    """

    _last: dict[str, float] = {}
    _last_any = 0.0

    def __init__(self, base_url: str, pace: bool) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/v1/api", verify=False, timeout=20)
        self.pace = pace
        self.account = ""

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        if self.pace:
            wait = max(Gateway._last.get(path, 0.0) + PACED.get(path, 0.0), Gateway._last_any + 0.12) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            Gateway._last[path] = Gateway._last_any = time.monotonic()
        return self.http.request(method, path, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.call("POST", path, json=json if json is not None else {}, **kw)

    # ---- flows ---------------------------------------------------------------------------------

    def prepare(self) -> str:
        """The pre-flights every service does: /iserver/accounts then /portfolio/accounts."""
        accounts = self.get("/iserver/accounts").json()
        self.get("/portfolio/accounts")
        self.account = accounts["selectedAccount"]
        return self.account

    def conid(self, symbol: str) -> int:
        return int(self.get("/iserver/secdef/search", params={"symbol": symbol}).json()[0]["conid"])

    def last_price(self, conid: int) -> float:
        for _ in range(6):
            rows = self.get("/iserver/marketdata/snapshot", params={"conids": str(conid), "fields": "31"}).json()
            value = rows[0].get("31") if rows else None
            if value:
                return float(str(value).lstrip("CH").replace(",", ""))
            time.sleep(0.5)
        raise AssertionError(f"no last price for {conid}")

    def place(self, order: dict[str, Any]) -> tuple[httpx.Response, list[str]]:
        """Place one order answering yes to each question; returns the final response and the message ids seen."""
        r = self.post(f"/iserver/account/{self.account}/orders", json={"orders": [order]})
        seen: list[str] = []
        for _ in range(10):
            body = r.json()
            if (
                r.status_code == 200
                and isinstance(body, list)
                and body
                and "id" in body[0]
                and "order_id" not in body[0]
            ):
                seen += body[0].get("messageIds", [])
                r = self.post(f"/iserver/reply/{body[0]['id']}", json={"confirmed": True})
                continue
            break
        return r, seen

    def far_limit(self, conid: int, **extra: Any) -> dict[str, Any]:
        """A BUY limit at half the market: never fills, always cancellable."""
        price = round(self.last_price(conid) * 0.5, 2)
        return {
            "conid": conid,
            "orderType": "LMT",
            "side": "BUY",
            "tif": "DAY",
            "quantity": 1,
            "price": price,
            "cOID": "ct-" + uuid.uuid4().hex[:12],
            **extra,
        }


@pytest.fixture(scope="session")
def cpsim_handle() -> Iterator[CpsimHandle]:
    with start_cpsim(extra_args=["--no-walk"]) as handle:
        yield handle


@pytest.fixture(params=["cpsim", pytest.param("live", marks=pytest.mark.live)])
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(name, base URL) of the gateway under test."""
    if request.param == "live":
        url = os.environ.get("IBKR_CONTRACT_GATEWAY_URL")
        if not url:
            pytest.skip("IBKR_CONTRACT_GATEWAY_URL is not set: no real gateway to run the contract suite against")
        return "live", url
    handle: CpsimHandle = request.getfixturevalue("cpsim_handle")
    httpx.post(handle.sim_url + "/reset", verify=False)
    httpx.post(handle.sim_url + "/limits", json={"enabled": False}, verify=False)
    return "cpsim", handle.url


@pytest.fixture
def gw(backend: tuple[str, str]) -> Iterator[Gateway]:
    client = Gateway(backend[1], pace=backend[0] == "live")
    yield client
    client.close()


@pytest.fixture
def sim(cpsim_handle: CpsimHandle) -> Iterator[httpx.Client]:
    """The simulator's control API (cpsim-only scenarios)."""
    with httpx.Client(base_url=cpsim_handle.sim_url, verify=False, timeout=10) as client:
        client.post("/reset")
        client.post("/limits", json={"enabled": False})
        yield client


@pytest.fixture
def sim_gw(cpsim_handle: CpsimHandle, sim: httpx.Client) -> Iterator[Gateway]:
    client = Gateway(cpsim_handle.url, pace=False)
    yield client
    client.close()
