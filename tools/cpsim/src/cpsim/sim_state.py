"""GET /sim/state: the whole simulator as JSON."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cpsim import hours
from cpsim.state import SimState


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, (datetime, date)):  # a day trade's date, for one
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_jsonable(x) for x in v]
    return v


def dump_state(state: SimState) -> dict[str, Any]:
    """Everything: clock, session, limits, accounts (with positions and executions), orders, requests."""
    now = state.clock.now()
    s = state.session
    accounts = {}
    for acct in state.accounts.values():
        m = acct.metrics(state.price, state.today())
        accounts[acct.account_id] = {
            "account_id": acct.account_id,
            "account_type": acct.account_type,
            "options_level": acct.options_level,
            "cash": acct.cash,
            "equity": m["equity"],
            "buying_power": m["buying_power"],
            "available_funds": m["available_funds"],
            "excess_liquidity": m["excess_liquidity"],
            "init_margin": m["init_margin"],
            "maint_margin": m["maint_margin"],
            "day_trades_remaining": int(m["day_trades_remaining"]),
            "day_trades": acct.day_trade_dates,
            "realized_pnl": acct.realized_pnl,
            "unrealized_pnl": m["unrealized_pnl"],
            "positions": [
                {**p.__dict__, "opened_on": p.opened_on.isoformat() if p.opened_on else None}
                for p in acct.positions.values()
            ],
            "executions": acct.executions,
        }
    book = [
        {
            "order_id": o.order_id,
            "cOID": o.coid,
            "account": o.account,
            "conid": o.conid,
            "conidex": o.conidex,
            "symbol": o.symbol,
            "side": o.side,
            "order_type": o.order_type,
            "quantity": o.quantity,
            "limit": o.limit,
            "stop": o.stop,
            "tif": o.tif,
            "status": o.status,
            "history": o.history,
            "filled": o.filled,
            "avg_fill": o.avg_fill,
            "created_at": o.created_at,
            "parent": o.parent_coid,
            "legs": o.legs,
            "expires_at": o.expires_at,
            "cancel_reason": o.cancel_reason,
        }
        for o in state.book.orders.values()
    ]
    prices = {
        str(c): {"bid": q.bid, "ask": q.ask, "last": q.last, "pinned": q.pinned}
        for c, q in state.market.quotes.items()
        if state.market.instruments.get(c) is None or state.market.instruments[c].sec_type == "STK" or q.pinned
    }
    return _jsonable(
        {
            "now": now,
            "clock_offset_s": state.clock.offset_s,
            "seed": state.seed,
            "gateway": {
                "name": state.config.name,
                "username": state.config.username,
                "paper": state.config.paper,
                "accounts": list(state.config.accounts),
            },
            "latency": {
                "enabled": state.latency.enabled,
                "scale": state.latency.scale,
                "jitter": state.latency.jitter,
                "overrides": state.latency.overrides,
            },
            "market_hours": hours.describe(state.market_hours, now),
            "config": {
                "region": state.config.region,
                "timezone": state.config.timezone,
                "idle_timeout_s": state.config.idle_timeout_s,
                "max_session_age_s": state.config.max_session_age_s,
                "market_hours": state.config.market_hours,
                "latency": state.config.latency,
                "latency_scale": state.config.latency_scale,
                "partial_fill_threshold": state.config.partial_fill_threshold,
            },
            "session": {
                "sso": s.sso,
                "brokerage": s.brokerage,
                "authenticated": s.authenticated,
                "connected": s.connected,
                "competing": s.competing,
                "login_at": s.login_at,
                "brokerage_at": s.brokerage_at,
                "last_request": s.last_request,
                "ended_reason": s.ended_reason,
                "session_id": s.session_id,
                "sso_expires_ms": s.sso_expires_ms(now),
                "next_reset": s.next_reset(now),
                "accounts_queried": s.preflight.accounts_queried,
                "portfolio_queried": s.portfolio_queried,
                "suppressed": sorted(s.suppressed),
            },
            "limits": {
                "enabled": state.limits.enabled,
                "penalty_s": state.limits.penalty_s,
                "violations": state.limits.violations,
                "paced": state.limits.pacer.paced,
                "in_flight": state.limits.pacer.in_flight,
                "penalty_until": state.limits.penalty_until,
            },
            "selected_account": state.selected,
            "accounts": accounts,
            "orders": state.book.received,
            "order_book": book,
            "modifications": state.book.modifications,
            "pending_questions": [
                {"reply_id": p.reply_id, "message_ids": p.questions} for p in state.book.pending.values()
            ],
            "injected_questions": state.book.injected,
            "faults": [f.__dict__ for f in state.faults],
            "prices": prices,
            "requests": list(state.requests),
        }
    )
