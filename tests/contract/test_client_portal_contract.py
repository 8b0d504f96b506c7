"""Client Portal behaviour the services rely on; every scenario runs on cpsim and on a real gateway (live)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Gateway

AAPL = "AAPL"


def test_healthy_session_reports_authenticated_connected_not_competing(gw: Gateway) -> None:
    status = gw.post("/iserver/auth/status").json()
    assert (status["authenticated"], status["connected"], status["competing"]) == (True, True, False)


def test_tickle_carries_session_and_auth_status_with_collission_spelling(gw: Gateway) -> None:
    body = gw.post("/tickle").json()
    assert isinstance(body["session"], str) and body["session"]
    assert "collission" in body and isinstance(body["ssoExpires"], int)
    assert body["iserver"]["authStatus"]["authenticated"] is True


def test_iserver_accounts_lists_the_selected_account_also_in_portfolio_accounts(gw: Gateway) -> None:
    accounts = gw.get("/iserver/accounts").json()
    assert accounts["selectedAccount"] in accounts["accounts"]
    portfolio = gw.get("/portfolio/accounts").json()
    assert accounts["selectedAccount"] in [a["accountId"] for a in portfolio]


def test_secdef_search_returns_conid_as_string_and_contract_info_is_snake_case(gw: Gateway) -> None:
    gw.prepare()
    hit = gw.get("/iserver/secdef/search", params={"symbol": AAPL}).json()[0]
    assert isinstance(hit["conid"], str) and hit["symbol"] == AAPL
    info = gw.get(f"/iserver/contract/{hit['conid']}/info").json()
    assert info["con_id"] == int(hit["conid"]) and "company_name" in info


def test_option_chain_months_strikes_and_info_after_search(gw: Gateway) -> None:
    gw.prepare()
    hit = gw.get("/iserver/secdef/search", params={"symbol": "SPY"}).json()[0]
    months = next(s for s in hit["sections"] if s["secType"] == "OPT")["months"].split(";")
    strikes = gw.get(
        "/iserver/secdef/strikes", params={"conid": hit["conid"], "sectype": "OPT", "month": months[0]}
    ).json()
    assert strikes["call"] and all(isinstance(s, float) for s in strikes["call"])
    strike = strikes["call"][len(strikes["call"]) // 2]
    info = gw.get(
        "/iserver/secdef/info",
        params={"conid": hit["conid"], "sectype": "OPT", "month": months[0], "strike": strike, "right": "C"},
    ).json()
    assert info and all(i["right"] == "C" for i in info) and isinstance(info[0]["conid"], int)


def test_snapshot_values_are_strings_after_the_preflight(gw: Gateway) -> None:
    gw.prepare()
    conid = gw.conid(AAPL)
    assert gw.last_price(conid) > 0
    row = gw.get("/iserver/marketdata/snapshot", params={"conids": str(conid), "fields": "31,84,86"}).json()[0]
    assert row["conid"] == conid and all(isinstance(row[f], str) for f in ("31", "84", "86") if f in row)


def test_order_ids_are_strings_when_placed_numbers_in_status_live_orders_and_cancel(gw: Gateway) -> None:
    gw.prepare()
    r, _ = gw.place(gw.far_limit(gw.conid(AAPL)))
    placed = r.json()[0]
    oid = placed["order_id"]
    assert isinstance(oid, str) and oid.lstrip("-").isdigit()
    assert placed["order_status"] in ("PreSubmitted", "Submitted", "PendingSubmit")
    status = gw.get(f"/iserver/account/order/status/{oid}").json()
    assert status["order_id"] == int(oid)
    live = gw.get("/iserver/account/orders").json()["orders"]
    assert int(oid) in [o["orderId"] for o in live]
    cancelled = gw.call("DELETE", f"/iserver/account/{gw.account}/order/{oid}").json()
    assert cancelled["order_id"] == int(oid) and cancelled["msg"] == "Request was submitted"
    for _ in range(10):
        if gw.get(f"/iserver/account/order/status/{oid}").json()["order_status"] == "Cancelled":
            break
        time.sleep(0.5)
    assert gw.get(f"/iserver/account/order/status/{oid}").json()["order_status"] == "Cancelled"


def test_a_question_reply_id_goes_stale_after_another_order(gw: Gateway) -> None:
    gw.prepare()
    gw.post("/iserver/questions/suppress/reset")
    conid = gw.conid(AAPL)
    first = gw.post(f"/iserver/account/{gw.account}/orders", json={"orders": [gw.far_limit(conid)]}).json()
    assert "id" in first[0] and first[0]["messageIds"]
    second = gw.post(f"/iserver/account/{gw.account}/orders", json={"orders": [gw.far_limit(conid)]}).json()
    r = gw.post(f"/iserver/reply/{first[0]['id']}", json={"confirmed": True})
    assert r.status_code == 400 and "reply id not found" in r.json()["error"]
    gw.post(f"/iserver/reply/{second[0]['id']}", json={"confirmed": False})


def test_suppressing_a_message_id_skips_that_question(gw: Gateway) -> None:
    gw.prepare()
    assert gw.post("/iserver/questions/suppress", json={"messageIds": ["o163"]}).json() == {"status": "submitted"}
    r, seen = gw.place(gw.far_limit(gw.conid(AAPL)))
    assert "o163" not in seen and "order_id" in r.json()[0]
    gw.call("DELETE", f"/iserver/account/{gw.account}/order/{r.json()[0]['order_id']}")
    assert gw.post("/iserver/questions/suppress/reset").json() == {"status": "submitted"}


def test_duplicate_coid_is_refused_with_local_order_id_error(gw: Gateway) -> None:
    gw.prepare()
    order = gw.far_limit(gw.conid(AAPL), cOID="dup-" + uuid.uuid4().hex[:10])
    first, _ = gw.place(order)
    second, _ = gw.place(order)
    assert "Local order ID=" in second.json()["error"]
    gw.call("DELETE", f"/iserver/account/{gw.account}/order/{first.json()[0]['order_id']}")


def test_live_orders_force_returns_empty_snapshot_false(gw: Gateway) -> None:
    gw.prepare()
    assert gw.get("/iserver/account/orders", params={"force": "true"}).json()["orders"] == []
    assert "orders" in gw.get("/iserver/account/orders").json()


def test_live_orders_reject_capitalised_filters_with_500(gw: Gateway) -> None:
    gw.prepare()
    assert gw.get("/iserver/account/orders", params={"filters": "Submitted"}).status_code == 500


def test_order_status_of_an_unknown_order_is_503(gw: Gateway) -> None:
    gw.prepare()
    assert gw.get("/iserver/account/order/status/1").status_code == 503


def test_positions_page_and_invalidate(gw: Gateway) -> None:
    account = gw.prepare()
    assert gw.post(f"/portfolio/{account}/positions/invalidate").json() == {"message": "success"}
    rows = gw.get(f"/portfolio/{account}/positions/0").json()
    assert isinstance(rows, list) and all(isinstance(r["conid"], int) for r in rows)


def test_account_summary_and_ledger_have_the_fields_services_read(gw: Gateway) -> None:
    account = gw.prepare()
    summary = gw.get(f"/portfolio/{account}/summary").json()
    for key in ("netliquidation", "buyingpower", "availablefunds", "daytradesremaining"):
        assert isinstance(summary[key]["amount"], float | int)
    flat = gw.get(f"/iserver/account/{account}/summary").json()
    assert isinstance(flat["buyingPower"], float | int)
    assert "BASE" in gw.get(f"/portfolio/{account}/ledger").json()


def test_pnl_partitioned_is_keyed_by_account_core(gw: Gateway) -> None:
    account = gw.prepare()
    body = gw.get("/iserver/account/pnl/partitioned").json()
    assert set(body) == {"upnl"} and all(k == f"{account}.Core" for k in body["upnl"])


def test_unknown_account_is_400_accountid_not_valid(gw: Gateway) -> None:
    gw.prepare()
    r = gw.get("/iserver/account/U0000000/summary")
    assert r.status_code == 400 and "accountId is not valid" in r.json()["error"]


def test_post_without_content_length_is_411(gw: Gateway) -> None:
    request = gw.http.build_request("POST", "/tickle")
    del request.headers["content-length"]
    assert gw.http.send(request).status_code == 411
