"""Where cpsim deliberately differs from IBKR's OpenAPI v2.24.0 response schemas, and why.

Each entry: (METHOD, OpenAPI path template, JSON pointer of the mismatching value as a glob) -> the reason,
citing REFERENCE.md or the recorded real responses (payloads/recordings). The OpenAPI-schema test ignores
exactly these and fails on any other mismatch, and on an entry that no longer matches anything.
"""

from __future__ import annotations

_NULLS = "the recorded real response has null here (REFERENCE.md 7.3 element; Portfolio recordings)"
_CONTRACT_NULLS = "recorded real response Contracts/GET-contract-info.json has null for stocks (REFERENCE.md 7.5)"
_NUMBERS = "recorded real response has a JSON number; REFERENCE.md 5 'type quirks' (clients must parse either)"

EXCEPTIONS: dict[tuple[str, str, str], str] = {
    ("GET", "/portfolio/accounts", "/*/businessType"): "recorded real value is INDEPENDENT (REFERENCE.md 7.2)",
    ("GET", "/portfolio/subaccounts", "/*/businessType"): "recorded real value is INDEPENDENT (REFERENCE.md 7.2)",
    ("GET", "/portfolio/{accountId}/meta", "/businessType"): "recorded real value is INDEPENDENT (REFERENCE.md 7.2)",
    ("GET", "/portfolio/{accountId}/summary", "/*/currency"): (
        'OpenAPI types `currency` as a number; REFERENCE.md 7.2 and the recording send "USD" or null'
    ),
    ("GET", "/portfolio/{accountId}/positions/{pageId}", "/*/group"): _NULLS,
    ("GET", "/portfolio/{accountId}/positions/{pageId}", "/*/sector"): _NULLS,
    ("GET", "/portfolio/{accountId}/positions/{pageId}", "/*/sectorGroup"): _NULLS,
    ("GET", "/portfolio/{accountId}/positions/{pageId}", "/*/lastTradingDay"): _NULLS,
    ("GET", "/portfolio/{accountId}/positions/{pageId}", "/*/putOrCall"): _NULLS + " for stocks",
    ("GET", "/portfolio/{accountid}/position/{conid}", "/*/group"): _NULLS,
    ("GET", "/portfolio/{accountid}/position/{conid}", "/*/sector"): _NULLS,
    ("GET", "/portfolio/{accountid}/position/{conid}", "/*/sectorGroup"): _NULLS,
    ("GET", "/portfolio/{accountid}/position/{conid}", "/*/lastTradingDay"): _NULLS,
    ("GET", "/portfolio/{accountid}/position/{conid}", "/*/putOrCall"): _NULLS + " for stocks",
    ("GET", "/portfolio/positions/{conid}", "/*"): (
        "OpenAPI maps each account to one object; REFERENCE.md 7.3 and the recording "
        "Portfolio/GET-portfolio-positions-by-conid.json map it to an array of positions"
    ),
    ("POST", "/iserver/account/{accountId}/orders/whatif", "/warn"): "recorded real response: null when no warning",
    ("POST", "/iserver/account/{accountId}/orders/whatif", "/error"): "recorded real response: null when no error",
    ("GET", "/iserver/account/orders", "/orders/*/conid"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/orders", "/orders/*/filledQuantity"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/orders", "/orders/*/remainingQuantity"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/orders", "/orders/*/totalSize"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/orders", "/orders/*/lastExecutionTime_r"): _NUMBERS + " (Orders/GET-live-orders.json)",
    ("GET", "/iserver/account/order/status/{orderId}", "/conid"): _NUMBERS + " (Orders/GET-order-status.json)",
    ("GET", "/iserver/account/order/status/{orderId}", "/sub_type"): "recorded real response: sub_type is null",
    ("GET", "/iserver/account/trades", "/*/conid"): _NUMBERS + " (Orders/GET-trades.json, REFERENCE.md 7.4)",
    ("GET", "/iserver/contract/{conid}/info", "/cusip"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", "/classifier"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", "/contract_clarification_type"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", "/contract_month"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", "/expiry_full"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", "/maturity_date"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", "/multiplier"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", "/text"): _CONTRACT_NULLS,
    ("GET", "/iserver/contract/{conid}/info", "/underlying_issuer"): _CONTRACT_NULLS,
}
