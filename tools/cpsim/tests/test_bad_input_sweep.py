"""Garbage at every implemented path: IBKR's documented status and body, never a simulator traceback.

Client Portal paths (/v1/api, taken from the app's own routes): malformed JSON, wrong types, unknown
accounts, conids and order ids. A 5xx is allowed only where REFERENCE.md says the real gateway answers
one (DOCUMENTED_5XX); a 500 is IBKR's `{"error": "<reason>"}`, a 400 `{"error": "Bad Request: ...",
"statusCode": 400}` (or the recorded `reply id not found` object); text appears only where
REFERENCE.md documents text. The /sim control API answers a bad body with 400 and a JSON error
naming the field.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from cpsim.app import build_app
from cpsim.config import SimConfig
from cpsim.testing import ACCOUNT as ACCT
from cpsim.testing import CONIDS

AAPL = CONIDS["AAPL"]
UNKNOWN_ACCOUNT, UNKNOWN_CONID = "DU0000001", 999999999

DOCUMENTED_5XX: dict[tuple[str, str], tuple[int, str]] = {
    ("POST", "/iserver/auth/ssodh/init"): (500, "REFERENCE.md 7.1: `publish` must be true, else 500"),
    ("POST", "/iserver/account"): (500, 'REFERENCE.md 5 and 7.2: invalid account id -> 500 "Invalid account ID"'),
    ("GET", "/iserver/account/orders"): (500, "REFERENCE.md 6: filters other than the lowercase forms -> 500"),
    ("GET", "/iserver/account/order/status/{order_id}"): (503, "REFERENCE.md 7.4: order not in this session -> 503"),
    ("POST", "/iserver/account/{account_id}/orders"): (500, 'REFERENCE.md 7.4: bad order content -> 500 {"error"}'),
    ("POST", "/iserver/account/{account_id}/orders/whatif"): (500, "REFERENCE.md 7.4: body like place-order"),
    ("POST", "/iserver/account/{account_id}/order/{order_id}"): (500, "REFERENCE.md 7.4: same union as place order"),
    ("POST", "/iserver/questions/suppress"): (500, "REFERENCE.md 7.4: more than 51 message ids -> system error"),
    ("GET", "/iserver/secdef/search"): (500, 'REFERENCE.md 7.5: 500 {"error"} on a processing error'),
    ("POST", "/iserver/secdef/search"): (500, 'REFERENCE.md 7.5: 500 {"error"} on a processing error'),
    ("GET", "/iserver/contract/{conid}/info"): (500, "REFERENCE.md 5: late-detected bad input -> 500 (OAS3: no 400)"),
    ("POST", "/iserver/marketdata/unsubscribe"): (500, 'REFERENCE.md 7.6: feed not open -> 500 {"error": "unknown"}'),
}
TEXT_ANSWERS = {401: "Unauthorized"}  # REFERENCE.md 5: no session -> 401 text/plain
TEXT_200 = {("POST", "/iserver/notification"): "Success"}  # REFERENCE.md 7.4

PLACEHOLDERS: dict[str, list[str]] = {
    "account_id": [UNKNOWN_ACCOUNT, "x y"],
    "conid": [str(UNKNOWN_CONID), "x", "-1"],
    "order_id": ["987654321", "x"],
    "page": ["x", "-3"],
    "reply_id": ["not-a-reply-id"],
}
VALID = {"account_id": ACCT, "conid": str(AAPL), "order_id": "987654321", "page": "0", "reply_id": "nope"}

ORDER_GARBAGE: list[Any] = [
    {"conid": "x", "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1},
    {"conid": AAPL, "orderType": [], "side": 1, "tif": 5, "quantity": "lots"},
    {"conid": AAPL, "orderType": "LMT", "side": "BUY", "tif": "DAY", "quantity": 1, "price": "abc"},
    {"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1e400},
    {"conid": UNKNOWN_CONID, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1},
    {"conidex": "28812380;;;x/1", "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1},
    None,
]
BODIES: list[bytes] = [
    b"{not json",
    b"\xff\xfe",
    b"[]",
    b'"x"',
    b"5",
    b"null",
    *(json.dumps({"orders": [o]}).encode() for o in ORDER_GARBAGE),
    *(json.dumps(o).encode() for o in ORDER_GARBAGE[:2]),
    json.dumps({"orders": "x", "acctId": 5, "confirmed": "yes", "messageIds": "o163", "publish": "x"}).encode(),
    json.dumps(
        {"conid": [1], "symbol": {"a": 1}, "acctId": UNKNOWN_ACCOUNT, "messageIds": [1], "conids": "x,y"}
    ).encode(),
    json.dumps({"conid": UNKNOWN_CONID, "symbol": "ZZZZ", "messageIds": ["o163"] * 60, "conids": [1, "x"]}).encode(),
    json.dumps({"orderId": "x", "reqId": [], "text": 5, "secType": "NOPE", "name": "x"}).encode(),
]
QUERIES: list[dict[str, str]] = [
    {"conid": "x", "conids": "x,,y", "fields": "@@", "days": "x", "filters": "Submitted", "month": "x", "strike": "x"},
    {"conid": str(UNKNOWN_CONID), "conids": str(UNKNOWN_CONID), "symbol": "", "symbols": "aapl", "days": "-5"},
    {"accountId": UNKNOWN_ACCOUNT, "sectype": "OPT", "month": "JAN99", "strike": "nan", "right": "Q", "force": "x"},
    {"conids": ",".join(["1"] * 300), "fields": ",".join(["31"] * 80), "sort": "zz", "direction": "q"},
]


def api_routes() -> list[tuple[str, str]]:
    """(method, path template after /v1/api) of every Client Portal route cpsim serves."""
    out = []
    for route in build_app(SimConfig()).routes:
        path = getattr(route, "path", "")
        if path.startswith("/v1/api/"):
            out += [(m, path[len("/v1/api") :]) for m in sorted(getattr(route, "methods", set()) - {"HEAD"})]
    return out


def sim_routes() -> list[tuple[str, str]]:
    """(method, path) of every /sim route that takes a body (POST /sim/logout takes none)."""
    out = []
    for route in build_app(SimConfig()).routes:
        path = getattr(route, "path", "")
        if path.startswith("/sim/") and path != "/sim/logout" and "POST" in getattr(route, "methods", set()):
            out.append(("POST", path))
    return out


def concrete_paths(template: str) -> list[str]:
    """The template with valid values, then with each placeholder in turn replaced by garbage."""
    names = re.findall(r"\{(\w+)\}", template)

    def fill(values: dict[str, str]) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)

    paths = [fill(VALID)]
    for name in names:
        paths += [fill({**VALID, name: bad}) for bad in PLACEHOLDERS[name]]
    return paths


def check(method: str, template: str, r: httpx.Response) -> str | None:
    """Why the answer is not what IBKR would send (None when it is)."""
    text, ctype = r.text, r.headers.get("content-type", "")
    if "internal error" in text or "Traceback" in text:
        return f"simulator error: {r.status_code} {text[:160]}"
    if r.status_code >= 500:
        documented = DOCUMENTED_5XX.get((method, template))
        if documented is None or documented[0] != r.status_code:
            return f"undocumented {r.status_code}: {text[:160]}"
    if "application/json" not in ctype:
        expected = TEXT_ANSWERS.get(r.status_code) or (TEXT_200.get((method, template)) if r.is_success else None)
        return None if expected is not None and text == expected else f"not JSON ({ctype}): {text[:160]}"
    body = r.json()
    if r.is_success:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"]:
        return f"error body is not IBKR's {{'error': ...}}: {text[:160]}"
    prefixed = body["error"].startswith("Bad Request: ")
    if prefixed and (r.status_code != 400 or body.get("statusCode") != 400):
        return f"'Bad Request:' text belongs to a 400 with statusCode 400, got {r.status_code}: {text[:160]}"
    if r.status_code == 500 and set(body) != {"error"}:
        return f"a 500 is IBKR's errorOnlyResponse {{'error'}}: {text[:160]}"
    return None


def prime(http: httpx.Client) -> None:
    """A logged-in brokerage session with every pre-flight done (secdef search for AAPL included)."""
    assert http.post("/sim/login").status_code == 200
    assert http.get("/v1/api/iserver/accounts").status_code == 200
    assert http.get("/v1/api/portfolio/accounts").status_code == 200
    assert http.get("/v1/api/iserver/secdef/search", params={"symbol": "AAPL"}).status_code == 200


API_ROUTES = api_routes()


def test_the_sweep_covers_every_client_portal_route_and_documented_5xx_exist() -> None:
    assert len(API_ROUTES) >= 40
    stale = set(DOCUMENTED_5XX) - set(API_ROUTES)
    assert not stale, f"DOCUMENTED_5XX names routes cpsim does not serve: {stale}"


@pytest.mark.parametrize(("method", "template"), API_ROUTES, ids=[f"{m} {t}" for m, t in API_ROUTES])
def test_garbage_gets_ibkr_answers_never_a_traceback(ready: httpx.Client, method: str, template: str) -> None:
    prime(ready)
    wrong: list[str] = []
    for path in concrete_paths(template):
        variants: list[dict[str, Any]] = [{"params": q} for q in QUERIES]
        if method != "GET":
            headers = {"content-type": "application/json"}
            variants += [{"content": body, "headers": headers} for body in BODIES]
        for kwargs in variants:
            r = ready.request(method, "/v1/api" + path, **kwargs)
            why = check(method, template, r)
            if why:
                wrong.append(f"{method} {path} {str(kwargs)[:100]}: {why}")
            if template in ("/logout", "/iserver/account"):
                prime(ready)  # keep the session (and the selected account) for the next variant
    assert not wrong, "\n".join(wrong)


SIM_GARBAGE: list[tuple[str, Any, str]] = [
    # (path, body, the field the error must name)
    ("/sim/reset", {"seed": "x"}, "seed"),
    ("/sim/reset", {"accounts": [{"id": []}]}, "accounts[0].id"),
    ("/sim/reset", {"accounts": [{"id": "DU1", "cash": "lots"}]}, "accounts[0].cash"),
    ("/sim/reset", {"keep_clock": "yes"}, "keep_clock"),
    ("/sim/login", {"brokerage": "false"}, "brokerage"),
    ("/sim/competing", {"competing": 1}, "competing"),
    ("/sim/accounts/{account_id}", {"cash": "NaN"}, "cash"),
    ("/sim/accounts/{account_id}", {"equity": []}, "equity"),
    ("/sim/accounts/{account_id}", {"buying_power": "x"}, "buying_power"),
    ("/sim/accounts/{account_id}", {"available_funds": {}}, "available_funds"),
    ("/sim/accounts/{account_id}", {"day_trades_remaining": 1.5}, "day_trades_remaining"),
    ("/sim/accounts/{account_id}", {"options_level": "x"}, "options_level"),
    ("/sim/accounts/{account_id}", {"account_type": "ira"}, "account_type"),
    ("/sim/accounts/{account_id}", {"title": {}}, "title"),
    ("/sim/positions/{account_id}", [{"conid": "x", "quantity": 1}], "positions[0].conid"),
    ("/sim/positions/{account_id}", [{"conid": 1, "quantity": "Infinity"}], "positions[0].quantity"),
    ("/sim/positions/{account_id}", [{"conid": 1, "quantity": 1, "avg_price": "x"}], "positions[0].avg_price"),
    (
        "/sim/positions/{account_id}",
        [{"conid": 1, "quantity": 1, "sec_type": "OPT", "multiplier": "x"}],
        "positions[0].multiplier",
    ),
    (
        "/sim/positions/{account_id}",
        [{"conid": 1, "quantity": 1, "sec_type": "OPT", "und_conid": "x"}],
        "positions[0].und_conid",
    ),
    ("/sim/positions/{account_id}", [{"conid": 1, "quantity": 1}, None], "positions[1]"),
    ("/sim/positions/{account_id}", "x", "positions"),
    ("/sim/prices", {"AAPL": {"bid": "NaN"}}, "AAPL.bid"),
    ("/sim/prices", {"AAPL": 5}, "AAPL"),
    ("/sim/prices", {"NOPE": {"last": 1}}, "NOPE"),
    ("/sim/market", {"walk": "x"}, "walk"),
    ("/sim/market", {"volatility": "x"}, "volatility"),
    ("/sim/clock", {"now": 5}, "now"),
    ("/sim/clock", {"now": "9999-12-31T00:00:00"}, "now"),
    ("/sim/clock", {"advance_s": "inf"}, "advance_s"),
    ("/sim/clock", {"advance_s": 1e308}, "advance_s"),
    ("/sim/faults", {"path_glob": 5}, "path_glob"),
    ("/sim/faults", {"path_glob": "*", "status": "x"}, "status"),
    ("/sim/faults", {"path_glob": "*", "status": 999}, "status"),
    ("/sim/faults", {"path_glob": "*", "delay_ms": "x"}, "delay_ms"),
    ("/sim/faults", {"path_glob": "*", "count": 0}, "count"),
    ("/sim/faults", {"path_glob": "*", "html": "false"}, "html"),
    ("/sim/faults", [{"path_glob": "*"}, {"path_glob": "*", "method": 5}], "[1].method"),
    ("/sim/questions", {"message_ids": "o163"}, "message_ids"),
    ("/sim/questions", {"message_ids": [1]}, "message_ids"),
    ("/sim/trades/{account_id}", [{"conid": "x"}], "trades[0].conid"),
    ("/sim/trades/{account_id}", [{"conid": AAPL, "time": "yesterday"}], "trades[0].time"),
    ("/sim/trades/{account_id}", [{"conid": AAPL, "quantity": "NaN"}], "trades[0].quantity"),
    ("/sim/trades/{account_id}", [{"conid": AAPL, "side": "x"}], "trades[0].side"),
    ("/sim/trades/{account_id}", {"conid": AAPL, "price": "x"}, "trades[0].price"),
    ("/sim/limits", {"enabled": "x"}, "enabled"),
    ("/sim/limits", {"penalty_s": "nan"}, "penalty_s"),
    ("/sim/limits", {"clear": "x"}, "clear"),
]


@pytest.mark.parametrize(("path", "body", "field"), SIM_GARBAGE, ids=[f"{p} {f}" for p, _, f in SIM_GARBAGE])
def test_sim_bad_body_is_400_naming_the_field(http: httpx.Client, path: str, body: Any, field: str) -> None:
    before = http.get("/sim/state").json()
    r = http.post(path.replace("{account_id}", ACCT), json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and r.json()["error"].startswith(field + " "), r.text
    after = http.get("/sim/state").json()
    for key in ("accounts", "faults", "limits", "prices"):
        assert after[key] == before[key], f"a refused body changed {key}"


@pytest.mark.parametrize(("method", "path"), sim_routes(), ids=[p for _, p in sim_routes()])
@pytest.mark.parametrize("raw", [b"{not json", b"\xff", b'"x"', b"5"], ids=["malformed", "bytes", "string", "number"])
def test_sim_non_object_body_is_400_json(http: httpx.Client, method: str, path: str, raw: bytes) -> None:
    r = http.post(path.replace("{account_id}", ACCT), content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] in ("body", "positions"), r.text


def test_sim_unknown_account_paths_create_the_account_only_for_a_valid_body(http: httpx.Client) -> None:
    assert http.post("/sim/accounts/DU7777777", json={"cash": "x"}).status_code == 400
    assert "DU7777777" not in http.get("/sim/state").json()["accounts"]
    assert http.post("/sim/positions/DU7777777", json=[{"conid": "x"}]).status_code == 400
    assert "DU7777777" not in http.get("/sim/state").json()["accounts"]
    r = http.post("/sim/positions/DU7777777", json=[{"conid": 1, "symbol": "ZZ", "quantity": 2, "avg_price": 3}])
    assert r.status_code == 200 and r.json()["positions"][0]["conid"] == 1


def test_bad_order_content_is_500_error_object_without_the_400_prefix(ready: httpx.Client) -> None:
    orders = f"/v1/api/iserver/account/{ACCT}/orders"
    for path in (orders, orders + "/whatif"):
        r = ready.post(path, json={"orders": [{"conid": AAPL, "orderType": "MKT", "side": "BUY", "quantity": "lots"}]})
        assert r.status_code == 500 and r.json() == {"error": "quantity must be a number"}
    r = ready.post(orders, content=b'{"orders": [{"quantity": NaN}]}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json() == {"error": "Bad Request: malformed JSON body", "statusCode": 400}


def test_live_orders_capitalised_filter_stays_500_with_an_error_object(ready: httpx.Client) -> None:
    r = ready.get("/v1/api/iserver/account/orders", params={"filters": "Submitted"})
    assert r.status_code == 500 and r.json() == {"error": "invalid filter 'Submitted'"}


def test_notification_answers_plain_text_success(ready: httpx.Client) -> None:
    r = ready.post("/v1/api/iserver/notification", json={"orderId": 987654321, "reqId": "12345", "text": "Yes"})
    assert r.status_code == 200 and r.text == "Success" and r.headers["content-type"].startswith("text/plain")
    r = ready.post("/v1/api/iserver/notification", json=["Yes"])
    assert r.status_code == 400 and r.json()["statusCode"] == 400


SESSION_STATES: dict[str, list[tuple[str, Any]]] = {
    "logged out": [("/sim/logout", None)],
    "read-only": [("/sim/login", {"brokerage": False})],
    "competing": [("/sim/login", None), ("/sim/competing", {"competing": True})],
}


@pytest.mark.parametrize("state", list(SESSION_STATES))
def test_garbage_without_a_brokerage_session_is_401_text_or_no_bridge(http: httpx.Client, state: str) -> None:
    wrong, seen = [], set()
    for method, template in API_ROUTES:
        path = concrete_paths(template)[-1]  # with the last garbage placeholder, if any
        variants: list[dict[str, Any]] = [{"params": QUERIES[0]}]
        if method != "GET":
            variants.append({"content": BODIES[0], "headers": {"content-type": "application/json"}})
        for kwargs in variants:
            for sim_path, body in SESSION_STATES[state]:  # logout, ssodh/init, reauthenticate change the state
                assert http.post(sim_path, json=body).status_code == 200
            r = http.request(method, "/v1/api" + path, **kwargs)
            seen.add("no bridge" if "no bridge" in r.text else r.status_code)
            why = check(method, template, r)
            if why:
                wrong.append(f"{method} {path}: {why}")
    assert not wrong, "\n".join(wrong)
    assert (401 if state == "logged out" else "no bridge") in seen, seen
