"""Portfolio, PnL, contracts and snapshots over real HTTPS."""

from __future__ import annotations

import httpx

from cpsim.testing import ACCOUNT as ACCT
from cpsim.testing import CONIDS, place_confirmed

AAPL, SPY = CONIDS["AAPL"], CONIDS["SPY"]


def test_positions_are_paged_100_per_page(ready: httpx.Client) -> None:
    rows = [
        {
            "conid": 900000000 + i,
            "symbol": f"X{i:03d}",
            "sec_type": "STK",
            "quantity": 1,
            "avg_price": 10,
            "market_price": 11,
        }
        for i in range(150)
    ]
    ready.post(f"/sim/positions/{ACCT}", json=rows)
    page0 = ready.get(f"/v1/api/portfolio/{ACCT}/positions/0").json()
    page1 = ready.get(f"/v1/api/portfolio/{ACCT}/positions/1").json()
    assert (len(page0), len(page1)) == (100, 50)
    assert ready.get(f"/v1/api/portfolio/{ACCT}/positions/2").json() == []
    assert page0[0]["mktPrice"] == 11.0 and page0[0]["unrealizedPnl"] == 1.0


def test_positions_are_cached_until_invalidated(ready: httpx.Client) -> None:
    assert ready.get(f"/v1/api/portfolio/{ACCT}/positions/0").json() == []
    place_confirmed(ready, {"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 2})
    assert ready.get(f"/v1/api/portfolio/{ACCT}/positions/0").json() == []
    assert ready.post(f"/v1/api/portfolio/{ACCT}/positions/invalidate").json() == {"message": "success"}
    rows = ready.get(f"/v1/api/portfolio/{ACCT}/positions/0").json()
    assert [(r["conid"], r["position"]) for r in rows] == [(AAPL, 2.0)]


def test_option_position_carries_expiry_strike_right_and_multiplier(ready: httpx.Client) -> None:
    ready.post(
        f"/sim/positions/{ACCT}",
        json=[
            {
                "conid": 123456789,
                "symbol": "SPY",
                "sec_type": "OPT",
                "quantity": -1,
                "avg_price": 5.0,
                "market_price": 4.0,
                "expiry": "2026-06-19",
                "strike": 600,
                "right": "P",
                "multiplier": 100,
                "underlying": "SPY",
            }
        ],
    )
    row = ready.get(f"/v1/api/portfolio/{ACCT}/position/123456789").json()[0]
    assert (row["expiry"], row["strike"], row["putOrCall"], row["multiplier"]) == ("20260619", "600", "P", 100.0)
    assert row["avgCost"] == 500.0 and row["undConid"] == SPY and row["mktValue"] == -400.0


def test_sim_accounts_sets_summary_fields(ready: httpx.Client) -> None:
    ready.post(f"/sim/accounts/{ACCT}", json={"equity": 20000, "options_level": 1, "account_type": "margin"})
    summary = ready.get(f"/v1/api/portfolio/{ACCT}/summary").json()
    assert summary["netliquidation"]["amount"] == 20000.0
    assert summary["daytradesremaining"]["amount"] == 3.0  # under 25k: PDT counting applies
    assert summary["buyingpower"]["amount"] == 40000.0
    assert ready.get("/sim/state").json()["accounts"][ACCT]["options_level"] == 1


def test_sim_accounts_creates_unknown_accounts(ready: httpx.Client) -> None:
    ready.post("/sim/accounts/U7654321", json={"cash": 5000, "account_type": "cash"})
    ids = [a["id"] for a in ready.get("/v1/api/portfolio/accounts").json()]
    assert ids == [ACCT, "U7654321"]


def test_iserver_summary_reflects_fills(ready: httpx.Client) -> None:
    before = ready.get(f"/v1/api/iserver/account/{ACCT}/summary").json()
    place_confirmed(ready, {"conid": SPY, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 100})
    after = ready.get(f"/v1/api/iserver/account/{ACCT}/summary").json()
    assert after["totalCashValue"] < before["totalCashValue"] - 65000
    assert after["availableFunds"] < before["availableFunds"]
    assert after["buyingPower"] == after["availableFunds"] * 4


def test_first_pnl_is_empty_then_rows(ready: httpx.Client) -> None:
    assert ready.get("/v1/api/iserver/account/pnl/partitioned").json() == {"upnl": {}}
    row = ready.get("/v1/api/iserver/account/pnl/partitioned").json()["upnl"][f"{ACCT}.Core"]
    assert row["rowType"] == 1 and row["nl"] == 1_000_000.0


def test_ledger_has_usd_and_base(ready: httpx.Client) -> None:
    ledger = ready.get(f"/v1/api/portfolio/{ACCT}/ledger").json()
    assert set(ledger) == {"USD", "BASE"} and ledger["USD"]["cashbalance"] == 1_000_000.0


def test_secdef_search_returns_string_conids(ready: httpx.Client) -> None:
    res = ready.get("/v1/api/iserver/secdef/search", params={"symbol": "AAPL"}).json()
    assert res[0]["conid"] == "265598" and res[0]["sections"][1]["secType"] == "OPT"


def test_strikes_are_empty_until_search_and_then_floats(ready: httpx.Client) -> None:
    month = "MAR26"
    empty = ready.get("/v1/api/iserver/secdef/strikes", params={"conid": AAPL, "sectype": "OPT", "month": month})
    assert empty.json() == {"call": [], "put": []}
    month = ready.get("/v1/api/iserver/secdef/search", params={"symbol": "AAPL"}).json()[0]["sections"][1]["months"]
    month = month.split(";")[0]
    body = ready.get("/v1/api/iserver/secdef/strikes", params={"conid": AAPL, "sectype": "OPT", "month": month}).json()
    assert len(body["call"]) == 21 and all(isinstance(s, float) for s in body["put"])


def test_secdef_info_lists_weekly_and_monthly_contracts(ready: httpx.Client) -> None:
    months = ready.get("/v1/api/iserver/secdef/search", params={"symbol": "QQQ"}).json()[0]["sections"][1]["months"]
    infos = []
    for month in months.split(";"):
        strikes = ready.get(
            "/v1/api/iserver/secdef/strikes", params={"conid": CONIDS["QQQ"], "sectype": "OPT", "month": month}
        ).json()["call"]
        infos += ready.get(
            "/v1/api/iserver/secdef/info",
            params={"conid": CONIDS["QQQ"], "sectype": "OPT", "month": month, "strike": strikes[10], "right": "C"},
        ).json()
    assert len({i["maturityDate"] for i in infos}) >= 6
    assert all(i["right"] == "C" and i["multiplier"] == "100" for i in infos)


def test_contract_info_and_trsrv_secdef(ready: httpx.Client) -> None:
    info = ready.get(f"/v1/api/iserver/contract/{SPY}/info").json()
    assert info["con_id"] == SPY and info["symbol"] == "SPY"
    secdef = ready.get("/v1/api/trsrv/secdef", params={"conids": f"{SPY},{AAPL}"}).json()["secdef"]
    assert [s["ticker"] for s in secdef] == ["SPY", "AAPL"]
    assert ready.get("/v1/api/trsrv/secdef").json() == {"error": "Bad Request: Conid(s) missing", "statusCode": 400}


def test_first_snapshot_is_preflight_then_string_fields(ready: httpx.Client) -> None:
    ready.post("/sim/prices", json={"AAPL": {"bid": 199.99, "ask": 200.01, "last": 200.0}})
    params = {"conids": str(AAPL), "fields": "31,84,86,6509"}
    first = ready.get("/v1/api/iserver/marketdata/snapshot", params=params).json()
    assert first == [{"conidEx": str(AAPL), "conid": AAPL}]
    row = ready.get("/v1/api/iserver/marketdata/snapshot", params=params).json()[0]
    assert (row["31"], row["84"], row["86"]) == ("200.00", "199.99", "200.01")


def test_unknown_conid_snapshot_has_only_ids(ready: httpx.Client) -> None:
    row = ready.get("/v1/api/iserver/marketdata/snapshot", params={"conids": "1", "fields": "31"}).json()[0]
    assert set(row) == {"conid", "conidEx", "_updated", "server_id"}


def test_trsrv_stocks_lists_us_and_mexi_contracts(ready: httpx.Client) -> None:
    body = ready.get("/v1/api/trsrv/stocks", params={"symbols": "TSLA"}).json()
    assert [c["isUS"] for c in body["TSLA"][0]["contracts"]] == [True, False]


def test_reset_accepts_seed_and_accounts(http: httpx.Client) -> None:
    http.post("/sim/reset", json={"seed": 7, "accounts": [{"id": "DU1111111", "cash": 50000}, {"id": "DU2222222"}]})
    state = http.get("/sim/state").json()
    assert state["seed"] == 7 and list(state["accounts"]) == ["DU1111111", "DU2222222"]
    assert state["accounts"]["DU1111111"]["cash"] == 50000.0
