"""Every implemented path's 200 body validated against IBKR's OpenAPI v2.24.0 response schema."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from cpsim.openapi_exceptions import EXCEPTIONS
from cpsim.testing import ACCOUNT as ACCT
from cpsim.testing import CONIDS, place_confirmed

SPEC_PATH = Path(__file__).resolve().parents[3].parent / "shared" / "cpapi" / "openapi-v2.24.0.json"
AAPL, SPY = CONIDS["AAPL"], CONIDS["SPY"]


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: `nullable: true` -> `type: [t, "null"]`; `oneOf` -> `anyOf`.

    IBKR's oneOf alternatives have no required keys, so several always match; anyOf keeps the intent.
    """
    if isinstance(node, dict):
        out = {("anyOf" if k == "oneOf" else k): _nullable(v) for k, v in node.items()}
        if out.pop("nullable", False):
            if "type" in out:
                out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
            elif "$ref" in out or "oneOf" in out or "allOf" in out or "anyOf" in out:
                out = {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    data["components"] = _nullable(data["components"])
    return data


def schema_for(spec: dict[str, Any], method: str, template: str) -> dict[str, Any]:
    op = spec["paths"][template][method.lower()]
    schema = _nullable(op["responses"]["200"]["content"]["application/json"]["schema"])
    return {**schema, "components": spec["components"]}


def cases(http: httpx.Client) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, OpenAPI template, concrete path, httpx kwargs), after bringing the simulator into shape."""
    http.get("/v1/api/iserver/accounts")
    http.get("/v1/api/portfolio/accounts")
    http.post("/sim/prices", json={"AAPL": {"bid": 199.99, "ask": 200.01, "last": 200.0}})
    _, filled = place_confirmed(http, {"conid": SPY, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 3})
    _, working = place_confirmed(
        http,
        {
            "conid": AAPL,
            "orderType": "LMT",
            "side": "BUY",
            "tif": "DAY",
            "quantity": 1,
            "price": 150.0,
            "cOID": "oas-1",
        },
    )
    fid, wid = filled[0]["order_id"], working[0]["order_id"]
    http.get("/v1/api/iserver/secdef/search", params={"symbol": "AAPL"})
    http.get("/v1/api/iserver/marketdata/snapshot", params={"conids": str(AAPL), "fields": "31"})
    http.get("/v1/api/iserver/account/pnl/partitioned")
    month = http.get("/v1/api/iserver/secdef/search", params={"symbol": "AAPL"}).json()[0]["sections"][1]["months"]
    month = month.split(";")[0]
    question = http.post(
        f"/v1/api/iserver/account/{ACCT}/orders",
        json={
            "orders": [{"conid": AAPL, "orderType": "LMT", "side": "BUY", "tif": "DAY", "quantity": 1, "price": 1.0}]
        },
    ).json()
    order = {"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1}
    return [
        ("POST", "/iserver/auth/status", "/iserver/auth/status", {}),
        ("POST", "/tickle", "/tickle", {}),
        ("GET", "/sso/validate", "/sso/validate", {}),
        ("POST", "/iserver/auth/ssodh/init", "/iserver/auth/ssodh/init", {"json": {"publish": True, "compete": True}}),
        ("GET", "/iserver/accounts", "/iserver/accounts", {}),
        ("GET", "/portfolio/accounts", "/portfolio/accounts", {}),
        ("GET", "/portfolio/subaccounts", "/portfolio/subaccounts", {}),
        ("GET", "/portfolio/{accountId}/meta", f"/portfolio/{ACCT}/meta", {}),
        ("GET", "/portfolio/{accountId}/summary", f"/portfolio/{ACCT}/summary", {}),
        ("GET", "/portfolio/{accountId}/ledger", f"/portfolio/{ACCT}/ledger", {}),
        ("GET", "/iserver/account/pnl/partitioned", "/iserver/account/pnl/partitioned", {}),
        ("POST", "/portfolio/{accountId}/positions/invalidate", f"/portfolio/{ACCT}/positions/invalidate", {}),
        ("GET", "/portfolio/{accountId}/positions/{pageId}", f"/portfolio/{ACCT}/positions/0", {}),
        ("GET", "/portfolio/{accountid}/position/{conid}", f"/portfolio/{ACCT}/position/{SPY}", {}),
        ("GET", "/portfolio/positions/{conid}", f"/portfolio/positions/{SPY}", {}),
        ("POST", "/iserver/reply/{replyId}", f"/iserver/reply/{question[0]['id']}", {"json": {"confirmed": True}}),
        (
            "POST",
            "/iserver/account/{accountId}/orders",
            f"/iserver/account/{ACCT}/orders",
            {"json": {"orders": [{**order, "price": 1.0, "orderType": "LMT"}]}},
        ),
        (
            "POST",
            "/iserver/account/{accountId}/orders",
            f"/iserver/account/{ACCT}/orders",
            {"json": {"orders": [order]}},
        ),
        (
            "POST",
            "/iserver/account/{accountId}/orders/whatif",
            f"/iserver/account/{ACCT}/orders/whatif",
            {"json": {"orders": [order]}},
        ),
        ("POST", "/iserver/questions/suppress", "/iserver/questions/suppress", {"json": {"messageIds": ["o163"]}}),
        ("POST", "/iserver/questions/suppress/reset", "/iserver/questions/suppress/reset", {}),
        ("GET", "/iserver/account/orders", "/iserver/account/orders", {}),
        ("GET", "/iserver/account/order/status/{orderId}", f"/iserver/account/order/status/{fid}", {}),
        ("GET", "/iserver/account/order/status/{orderId}", f"/iserver/account/order/status/{wid}", {}),
        (
            "POST",
            "/iserver/account/{accountId}/order/{orderId}",
            f"/iserver/account/{ACCT}/order/{wid}",
            {"json": {"conid": AAPL, "orderType": "LMT", "side": "BUY", "tif": "DAY", "quantity": 2, "price": 151.0}},
        ),
        ("DELETE", "/iserver/account/{accountId}/order/{orderId}", f"/iserver/account/{ACCT}/order/{wid}", {}),
        ("GET", "/iserver/account/trades", "/iserver/account/trades", {}),
        ("GET", "/iserver/secdef/search", "/iserver/secdef/search", {"params": {"symbol": "SPY"}}),
        (
            "GET",
            "/iserver/secdef/strikes",
            "/iserver/secdef/strikes",
            {"params": {"conid": AAPL, "sectype": "OPT", "month": month}},
        ),
        (
            "GET",
            "/iserver/secdef/info",
            "/iserver/secdef/info",
            {"params": {"conid": AAPL, "sectype": "OPT", "month": month, "right": "C"}},
        ),
        ("GET", "/iserver/contract/{conid}/info", f"/iserver/contract/{SPY}/info", {}),
        ("GET", "/trsrv/secdef", "/trsrv/secdef", {"params": {"conids": f"{SPY},{AAPL}"}}),
        ("GET", "/trsrv/stocks", "/trsrv/stocks", {"params": {"symbols": "AAPL,SPY"}}),
        (
            "GET",
            "/iserver/marketdata/snapshot",
            "/iserver/marketdata/snapshot",
            {"params": {"conids": str(AAPL), "fields": "31,84,86,85,88,87,70,71,82,83,6509,55,7051"}},
        ),
        ("POST", "/logout", "/logout", {}),
    ]


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p) for p in path)


def leaf_errors(err: Any) -> list[Any]:
    """For anyOf failures, the errors of the closest alternative; else the error itself."""
    if err.validator != "anyOf" or not err.context:
        return [err]
    branches: dict[Any, list[Any]] = {}
    for sub in err.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    best = min(branches.values(), key=len)
    return [leaf for sub in best for leaf in leaf_errors(sub)]


def test_responses_match_openapi_schemas_except_documented_differences(
    http: httpx.Client, spec: dict[str, Any]
) -> None:
    unexpected: list[str] = []
    used: set[tuple[str, str, str]] = set()
    checked: set[tuple[str, str]] = set()
    for method, template, path, kwargs in cases(http):
        r = http.request(method, "/v1/api" + path, **kwargs)
        assert r.status_code == 200, f"{method} {path}: HTTP {r.status_code} {r.text[:200]}"
        checked.add((method, template))
        validator = Draft202012Validator(schema_for(spec, method, template))
        for err in (leaf for top in validator.iter_errors(r.json()) for leaf in leaf_errors(top)):
            where = _pointer(err.absolute_path)
            key = next(
                (k for k in EXCEPTIONS if k[:2] == (method, template) and fnmatch.fnmatchcase(where, k[2])), None
            )
            if key is None:
                unexpected.append(f"{method} {template} {where}: {err.message[:160]}")
            else:
                used.add(key)
    assert not unexpected, "\n".join(unexpected)
    assert len(checked) >= 33
    stale = set(EXCEPTIONS) - used
    assert not stale, f"exceptions that no longer match anything: {stale}"
