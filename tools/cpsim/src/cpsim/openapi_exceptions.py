"""Where cpsim deliberately differs from IBKR's OpenAPI v2.24.0 response schemas, and why.

Each entry: (METHOD, OpenAPI path template, HTTP status, JSON pointer of the mismatching value as a glob;
"" is the body as a whole) -> the reason, citing REFERENCE.md or the recorded real responses
(payloads/recordings). The OpenAPI-schema test ignores exactly these and fails on any other mismatch, and on
an entry that no longer matches anything.
"""

from __future__ import annotations

_NULLS = "the recorded real response has null here (REFERENCE.md 7.3 element; Portfolio recordings)"
_CONTRACT_NULLS = "recorded real response Contracts/GET-contract-info.json has null for stocks (REFERENCE.md 7.5)"
_STATUS_CODE = (
    "OpenAPI's errorResponse types statusCode as a string, but its own IServerAccountBadRequest examples and "
    'REFERENCE.md 4 and 5 send the number ({"error": "Bad Request: ...", "statusCode": 400})'
)
_BOOL_ENUM = 'OpenAPI\'s enum lists the string "true" for a boolean property (its own example sends true)'
_NUMBERS = "recorded real response has a JSON number; REFERENCE.md 5 'type quirks' (clients must parse either)"

EXCEPTIONS: dict[tuple[str, str, int, str], str] = {
    ("GET", "/portfolio/accounts", 200, "/*/businessType"): "recorded real value is INDEPENDENT (REFERENCE.md 7.2)",
    ("GET", "/portfolio/subaccounts", 200, "/*/businessType"): "recorded real value is INDEPENDENT (REFERENCE.md 7.2)",
    (
        "GET",
        "/portfolio/{accountId}/meta",
        200,
        "/businessType",
    ): "recorded real value is INDEPENDENT (REFERENCE.md 7.2)",
    ("GET", "/portfolio/{accountId}/summary", 200, "/*/currency"): (
        'OpenAPI types `currency` as a number; REFERENCE.md 7.2 and the recording send "USD" or null'
    ),
    ("GET", "/portfolio/{accountId}/positions/{pageId}", 200, "/*/group"): _NULLS,
    ("GET", "/portfolio/{accountId}/positions/{pageId}", 200, "/*/sector"): _NULLS,
    ("GET", "/portfolio/{accountId}/positions/{pageId}", 200, "/*/sectorGroup"): _NULLS,
    ("GET", "/portfolio/{accountId}/positions/{pageId}", 200, "/*/lastTradingDay"): _NULLS,
    ("GET", "/portfolio/{accountId}/positions/{pageId}", 200, "/*/putOrCall"): _NULLS + " for stocks",
    ("GET", "/portfolio/{accountid}/position/{conid}", 200, "/*/group"): _NULLS,
    ("GET", "/portfolio/{accountid}/position/{conid}", 200, "/*/sector"): _NULLS,
    ("GET", "/portfolio/{accountid}/position/{conid}", 200, "/*/sectorGroup"): _NULLS,
    ("GET", "/portfolio/{accountid}/position/{conid}", 200, "/*/lastTradingDay"): _NULLS,
    ("GET", "/portfolio/{accountid}/position/{conid}", 200, "/*/putOrCall"): _NULLS + " for stocks",
    ("GET", "/portfolio/positions/{conid}", 200, "/*"): (
        "OpenAPI maps each account to one object; REFERENCE.md 7.3 and the recording "
        "Portfolio/GET-portfolio-positions-by-conid.json map it to an array of positions"
    ),
    (
        "POST",
        "/iserver/account/{accountId}/orders/whatif",
        200,
        "/warn",
    ): "recorded real response: null when no warning",
    ("POST", "/iserver/account/{accountId}/orders/whatif", 200, "/error"): "recorded real response: null when no error",
    ("GET", "/iserver/account/orders", 200, "/orders/*/conid"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/orders", 200, "/orders/*/filledQuantity"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/orders", 200, "/orders/*/remainingQuantity"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/orders", 200, "/orders/*/totalSize"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/orders", 200, "/orders/*/lastExecutionTime_r"): _NUMBERS
    + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/order/status/{orderId}", 200, "/conid"): _NUMBERS + " (Orders/GET-order-status.json)",
    ("GET", "/iserver/account/order/status/{orderId}", 200, "/sub_type"): "recorded real response: sub_type is null",
    ("GET", "/iserver/account/trades", 200, "/*/conid"): _NUMBERS + " (Orders/GET-trades.json, REFERENCE.md 7.4)",
    ("GET", "/iserver/contract/{conid}/info", 200, "/cusip"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", 200, "/classifier"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", 200, "/contract_clarification_type"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", 200, "/contract_month"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", 200, "/expiry_full"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", 200, "/maturity_date"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", 200, "/multiplier"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", 200, "/text"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", 200, "/underlying_issuer"): _CONTRACT_NULLS,
    ("POST", "/iserver/notification", 200, ""): (
        "REFERENCE.md 7.4 (CPV1): the answer is the plain text `Success`; OpenAPI documents a JSON string"
    ),
    ("POST", "/iserver/marketdata/unsubscribe", 200, "/success"): _BOOL_ENUM + '; REFERENCE.md 7.6 {"success": true}',
    ("GET", "/iserver/marketdata/unsubscribeall", 200, "/unsubscribed"): (
        _BOOL_ENUM + '; REFERENCE.md 7.6 {"unsubscribed": true}'
    ),
    ("GET", "/iserver/account/{accountId}/summary", 400, "/statusCode"): _STATUS_CODE,
    ("GET", "/trsrv/secdef", 400, "/statusCode"): _STATUS_CODE + " (Missing conids row of REFERENCE.md 5)",
    ("GET", "/iserver/account/order/status/{orderId}", 503, "/statusCode"): (
        _STATUS_CODE + '; REFERENCE.md 5 gives the 503 the same shape {"error": "...", "statusCode": 503}'
    ),
}

# Operations cpsim serves and the OpenAPI document describes that no case validates, (METHOD, template) -> why.
UNVALIDATED: dict[tuple[str, str], str] = {}
