"""The answers of the order path that are not results: its errors, and small pure helpers of deciding."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from ibkr_common.messages.orders import Decision
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_compliance.ledger import LedgerEntry
from ibkr_compliance.rules import MarketData

#: Blocks that say the state at hand is not good enough to decide on, not that the order breaks a rule:
#: a retryable error, nothing recorded for the client_order_id (the same id is decided afresh later).
UNSETTLED = {"STALE_ACCOUNT_DATA": ErrorCode.STATE_UNAVAILABLE,
             "NO_QUOTE_FOR_MARKET_ORDER": ErrorCode.STATE_UNAVAILABLE,
             "BROKER_SESSION_NOT_AUTHENTICATED": ErrorCode.NOT_AUTHENTICATED}

def account_environment(account_id: str) -> Literal["paper", "live"]:
    """IBKR paper accounts start with D (`DU…`), live ones with U (RULES.md 7.8)."""
    return "paper" if account_id.upper().startswith("D") else "live"


def blocked_error(decision: Decision) -> ServiceError:
    """The error reply of a blocked order: the most specific code, the Decision in `details`."""
    codes = {r.code for r in decision.reasons}
    code = ErrorCode.COMPLIANCE_BLOCKED
    if "ENVIRONMENT_MISMATCH" in codes:
        code = ErrorCode.ENVIRONMENT_MISMATCH
    elif "TRADING_HALTED" in codes:
        code = ErrorCode.TRADING_HALTED
    blocking = decision.blocking() or [r for r in decision.reasons if r.code != "OK"]  # older rows: no severity
    text = "; ".join(f"{r.code}: {r.message}" for r in blocking)
    return ServiceError(code, f"order blocked: {text}", decision.model_dump(mode="json"))


def unsettled_error(decision: Decision) -> ServiceError | None:
    """The retryable error of a block that only says the state was not good enough (UNSETTLED), or None."""
    codes = [r.code for r in decision.reasons if r.code in UNSETTLED]
    if decision.decision != "block" or not codes:
        return None
    text = "; ".join(f"{r.code}: {r.message}" for r in decision.reasons if r.code in UNSETTLED)
    return ServiceError(UNSETTLED[codes[0]], f"cannot decide on the state at hand ({text}); nothing was recorded "
                        "for this client_order_id: send it again", decision.model_dump(mode="json"), retryable=True)


def missing_error(missing: list[str]) -> ServiceError:
    """The retryable error of a decision without the state it needs."""
    return ServiceError(
        ErrorCode.STATE_UNAVAILABLE,
        f"cannot decide: no {', '.join(missing)} (the service that keeps it is down or restarting, and no copy is "
        "young enough); nothing was recorded: send it again", [{"missing": name} for name in missing],
        retryable=True)


def quotes_moved(market: MarketData, by: timedelta) -> MarketData:
    """The quotes as if taken `by` later (a what-if at another time keeps each quote's age)."""
    if not by:
        return market
    quotes = {symbol: q.model_copy(update={"as_of": q.as_of + by}) if q.as_of else q
              for symbol, q in market.quotes.items()}
    return market.model_copy(update={"quotes": quotes})


def same_body(entry: LedgerEntry, body: dict[str, Any]) -> None:
    """CONFLICT when a known client_order_id comes with another order body (one id, one order)."""
    if entry.request and entry.request != body:
        fields = sorted(k for k in {*entry.request, *body} if entry.request.get(k) != body.get(k))
        raise ServiceError(ErrorCode.CONFLICT,
                           f"client_order_id {entry.client_order_id} was used for another order "
                           f"(different {', '.join(fields)})", [{"field": f, "message": "differs from the "
                                                                 "first order with this id"} for f in fields])


def uncertain_error(client_order_id: str, status: str) -> ServiceError:
    """The retryable answer for an order whose send has no outcome yet."""
    return ServiceError(
        ErrorCode.TIMEOUT,
        f"the order's send is uncertain ({status}); it is being resolved by its client_order_id at the gateway "
        "(within 60 s): ask again with the same client_order_id, it is never sent twice",
        {"client_order_id": client_order_id, "status": status}, retryable=True)
