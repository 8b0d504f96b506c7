"""Client Portal JSON -> typed models. Pure functions; unknown keys are ignored, odd types tolerated."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ibkr_common.messages import bridge as m
from ibkr_gateway_bridge import mapping as mp
from ibkr_gateway_bridge.mapping import to_decimal as dec
from ibkr_gateway_bridge.mapping import to_int


def as_dict(obj: Any) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else {}


def as_list(obj: Any) -> list[Any]:
    return obj if isinstance(obj, list) else []


def as_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# ---- session ---------------------------------------------------------------------------------


def session_status(body: Any) -> m.SessionStatus:
    b = as_dict(body)
    info = as_dict(b.get("serverInfo"))
    return m.SessionStatus(
        authenticated=bool(b.get("authenticated")), connected=bool(b.get("connected")),
        competing=bool(b.get("competing")), message=as_text(b.get("message")), fail=as_text(b.get("fail")),
        server_name=as_text(info.get("serverName")), server_version=as_text(info.get("serverVersion")),
    )


def tickle(body: Any, now: datetime) -> m.TickleResult:
    b = as_dict(body)
    if b.get("error") is not None:
        return m.TickleResult(authenticated=False, connected=False, competing=False, no_session=True)
    auth = as_dict(as_dict(b.get("iserver")).get("authStatus"))
    expires = to_int(b.get("ssoExpires"))
    return m.TickleResult(
        authenticated=bool(auth.get("authenticated")), connected=bool(auth.get("connected")),
        competing=bool(auth.get("competing")) or bool(b.get("collission")), sso_expires_ms=expires,
        expires_at=now + timedelta(milliseconds=expires) if expires is not None else None,
    )


def validate(body: Any, now: datetime) -> m.ValidateResult:
    b = as_dict(body)
    expires = to_int(b.get("EXPIRES", b.get("expire")))
    login = to_int(b.get("LOGIN_TYPE", b.get("loginType")))
    return m.ValidateResult(
        valid=bool(b.get("RESULT")), expires_ms=expires,
        expires_at=now + timedelta(milliseconds=expires) if expires is not None else None,
        environment="live" if login == 1 else "paper" if login == 2 else None,
        login_at=mp.ms_time(b.get("AUTH_TIME")),
    )


# ---- accounts --------------------------------------------------------------------------------


def accounts_list(body: Any) -> m.AccountsList:
    b = as_dict(body)
    aliases = {str(k): str(v) for k, v in as_dict(b.get("aliases")).items() if v is not None}
    paper = b.get("isPaper")
    return m.AccountsList(
        accounts=[str(a) for a in as_list(b.get("accounts"))], selected_account=as_text(b.get("selectedAccount")),
        aliases=aliases, is_paper=paper if isinstance(paper, bool) else None,
    )


def portfolio_accounts(body: Any) -> m.PortfolioAccounts:
    out = []
    for a in as_list(body):
        a = as_dict(a)
        ident = a.get("accountId") or a.get("id")
        if not ident:
            continue
        access = a.get("brokerageAccess")
        out.append(m.PortfolioAccount(
            account_id=str(ident), title=as_text(a.get("accountTitle") or a.get("displayName")),
            currency=as_text(a.get("currency")), type=as_text(a.get("type")),
            trading_type=as_text(a.get("tradingType")),
            customer_type=as_text(a.get("acctCustType")), clearing_status=as_text(a.get("clearingStatus")),
            brokerage_access=access if isinstance(access, bool) else None,
        ))
    return m.PortfolioAccounts(accounts=out)


SUMMARY_KEYS = {
    "net_liquidation": "netliquidation", "equity_with_loan": "equitywithloanvalue",
    "buying_power": "buyingpower", "available_funds": "availablefunds", "excess_liquidity": "excessliquidity",
    "total_cash": "totalcashvalue", "settled_cash": "settledcash", "gross_position_value": "grosspositionvalue",
    "init_margin": "initmarginreq", "maint_margin": "maintmarginreq", "cushion": "cushion",
}


def account_summary(account_id: str, body: Any) -> m.AccountSummary:
    """`/portfolio/{id}/summary`: each key maps to `{amount, currency, isNull, value, ...}`."""
    values: dict[str, Decimal] = {}
    texts: dict[str, str] = {}
    currency = account_type = None
    for key, item in as_dict(body).items():
        item = as_dict(item)
        if not item or item.get("isNull"):
            continue
        if key == "accounttype":
            account_type = as_text(item.get("value"))
            continue
        text = item.get("value")
        amount = dec(item.get("amount")) if text in (None, "") else dec(text)
        if amount is not None:
            values[key] = amount
        elif isinstance(text, str) and text:
            texts[key] = text
        if key == "netliquidation" and item.get("currency"):
            currency = str(item["currency"])
    typed: dict[str, Any] = {field: values.get(key) for field, key in SUMMARY_KEYS.items()}
    dtr = values.get("daytradesremaining")
    return m.AccountSummary(
        account_id=account_id, currency=currency, account_type=account_type,
        day_trades_remaining=int(dtr) if dtr is not None else None, values=values, texts=texts, **typed,
    )


def ledger(account_id: str, body: Any) -> m.Ledger:
    entries = []
    for key, item in as_dict(body).items():
        item = as_dict(item)
        if not item:
            continue
        entries.append(m.LedgerEntry(
            currency=str(item.get("currency") or key), cash_balance=dec(item.get("cashbalance")),
            settled_cash=dec(item.get("settledcash")), net_liquidation=dec(item.get("netliquidationvalue")),
            stock_market_value=dec(item.get("stockmarketvalue")),
            option_market_value=dec(item.get("stockoptionmarketvalue")),
            unrealized_pnl=dec(item.get("unrealizedpnl")), realized_pnl=dec(item.get("realizedpnl")),
            exchange_rate=dec(item.get("exchangerate")),
        ))
    return m.Ledger(account_id=account_id, entries=entries)


def pnl(body: Any) -> m.Pnl:
    rows = []
    upnl = as_dict(as_dict(body).get("upnl"))
    for key, item in upnl.items():
        item = as_dict(item)
        rows.append(m.PnlRow(
            key=str(key), account_id=str(key).split(".", 1)[0], daily_pnl=dec(item.get("dpl")),
            net_liquidation=dec(item.get("nl")), unrealized_pnl=dec(item.get("upl")),
            excess_liquidity=dec(item.get("el")), market_value=dec(item.get("mv")),
        ))
    return m.Pnl(rows=rows, complete=bool(upnl))


# ---- positions -------------------------------------------------------------------------------


def position(account_id: str, p: dict[str, Any]) -> m.Position | None:
    conid = to_int(p.get("conid"))
    qty = dec(p.get("position"))
    if conid is None or qty is None:
        return None
    strike = dec(p.get("strike"))
    mult = dec(p.get("multiplier"))
    und = to_int(p.get("undConid"))
    return m.Position(
        account_id=str(p.get("acctId") or account_id), conid=conid,
        symbol=as_text(p.get("ticker") or p.get("contractDesc")),
        description=as_text(p.get("contractDesc") or p.get("name")),
        sec_type=mp.asset_class(p.get("assetClass") or p.get("secType")), quantity=qty,
        avg_cost=dec(p.get("avgCost")), avg_price=dec(p.get("avgPrice")),
        market_price=dec(p.get("mktPrice", p.get("marketPrice"))),
        market_value=dec(p.get("mktValue", p.get("marketValue"))), currency=as_text(p.get("currency")),
        unrealized_pnl=dec(p.get("unrealizedPnl")), realized_pnl=dec(p.get("realizedPnl")),
        expiry=as_text(p.get("expiry")), right=mp.right(p.get("putOrCall")),  # type: ignore[arg-type]
        strike=strike if strike else None, multiplier=mult if mult else None, underlying_conid=und or None,
        underlying_symbol=as_text(p.get("undSym")),
    )


def positions(account_id: str, body: Any) -> list[m.Position]:
    return positions_read(account_id, body)[0]


def positions_read(account_id: str, body: Any) -> tuple[list[m.Position], int, int]:
    """The readable positions, how many entries IBKR sent, and how many could not be read."""
    items = as_list(body)
    if isinstance(body, dict):  # /portfolio/positions/{conid}: {acct: [...]}
        items = [p for v in body.values() for p in as_list(v)]
    read = [p for p in (position(account_id, as_dict(x)) for x in items) if p is not None]
    return read, len(items), len(items) - len(read)


# ---- orders ----------------------------------------------------------------------------------


def order_body(o: m.OrderSpec, account_id: str) -> dict[str, Any]:
    """One order as IBKR wants it (omitting zero/absent optionals, KB's advice)."""
    out: dict[str, Any] = {"acctId": account_id, "orderType": mp.ORDER_TYPE_OUT[o.order_type], "side": o.side,
                           "quantity": float(o.quantity) if o.quantity != o.quantity.to_integral() else int(o.quantity),
                           "tif": o.tif}
    if o.conid is not None:
        out["conid"] = o.conid
    if o.conidex is not None:
        out["conidex"] = o.conidex
    if o.price is not None:
        out["price"] = float(o.price)
    if o.aux_price is not None:
        out["auxPrice"] = float(o.aux_price)
    if o.coid:
        out["cOID"] = o.coid
    if o.parent_id:
        out["parentId"] = o.parent_id
    if o.outside_rth:
        out["outsideRTH"] = True
    if o.listing_exchange:
        out["listingExchange"] = o.listing_exchange
    if o.sec_type:
        out["secType"] = o.sec_type
    if o.referrer:
        out["referrer"] = o.referrer
    if o.is_single_group is not None:
        out["isSingleGroup"] = o.is_single_group
    return out


def place_result(body: Any, coid: str | None) -> m.PlaceOrderResult:
    """The four shapes of place/reply/modify: placed array, question, `{"error"}`, server prompt."""
    if isinstance(body, dict):
        if body.get("prompt") or ("options" in body and "reqId" in body):
            return m.PlaceOrderResult(status="rejected", client_order_id=coid, message=as_text(body.get("text")),
                                      order_id=mp.id_str(body.get("orderId")), prompt=body)
        if body.get("error") is not None:
            return m.PlaceOrderResult(status="rejected", client_order_id=coid, message=str(body["error"]))
        body = [body]
    items = [as_dict(x) for x in as_list(body)]
    if not items:
        return m.PlaceOrderResult(status="unknown", client_order_id=coid, evidence={"reason": "empty answer"})
    first = items[0]
    if first.get("id") is not None and ("message" in first or "messageIds" in first):
        messages = first.get("message")
        return m.PlaceOrderResult(
            status="confirmation_required", client_order_id=coid,
            confirmation=m.Confirmation(
                reply_id=str(first["id"]),
                messages=[str(x) for x in messages] if isinstance(messages, list) else [str(messages or "")],
                message_ids=[str(x) for x in as_list(first.get("messageIds"))],
                options=[str(x) for x in as_list(first.get("messageOptions"))],
            ),
        )
    placed = []
    for item in items:
        ibkr_status = as_text(item.get("order_status"))
        placed.append(m.PlacedOrder(
            order_id=mp.id_str(item.get("order_id")),
            order_status=mp.order_status(ibkr_status) if ibkr_status else None,  # type: ignore[arg-type]
            ibkr_status=ibkr_status, text=as_text(item.get("text") or item.get("warning_message")),
        ))
    head = placed[0]
    failed = head.order_id in (None, "-1") or (head.order_status in ("failed", "inactive") and bool(head.text))
    if failed:
        return m.PlaceOrderResult(status="rejected", client_order_id=coid, order_id=None, message=head.text,
                                  order_status=head.order_status, orders=placed)
    return m.PlaceOrderResult(status="submitted", client_order_id=coid, order_id=head.order_id,
                              order_status=head.order_status, orders=placed)


def _coid_of(o: dict[str, Any]) -> str | None:
    for key in ("order_ref", "cOID", "local_order_id", "orderRef"):
        if o.get(key):
            return str(o[key])
    return None


def live_order(o: dict[str, Any]) -> m.LiveOrder | None:
    order_id = mp.id_str(o.get("orderId", o.get("order_id")))
    if order_id is None:
        return None
    ibkr_status = as_text(o.get("status") or o.get("order_status"))
    aux = dec(o.get("auxPrice"))
    return m.LiveOrder(
        account_id=as_text(o.get("acct") or o.get("account")), order_id=order_id, client_order_id=_coid_of(o),
        conid=to_int(o.get("conid")), symbol=as_text(o.get("ticker") or o.get("description1")),
        sec_type=mp.asset_class(o.get("secType")), side=mp.side(o.get("side")),  # type: ignore[arg-type]
        order_type=mp.order_type_in(o.get("origOrderType") or o.get("orderType")),
        status=mp.order_status(ibkr_status), ibkr_status=ibkr_status,  # type: ignore[arg-type]
        quantity=dec(o.get("totalSize")), filled_quantity=dec(o.get("filledQuantity")),
        remaining_quantity=dec(o.get("remainingQuantity")), price=dec(o.get("price")), aux_price=aux,
        avg_price=dec(o.get("avgPrice")), tif=as_text(o.get("timeInForce")), description=as_text(o.get("orderDesc")),
        last_execution_at=mp.ms_time(o.get("lastExecutionTime_r")) or mp.ibkr_time(o.get("lastExecutionTime")),
    )


def live_orders(body: Any) -> list[m.LiveOrder]:
    items = as_list(as_dict(body).get("orders")) if isinstance(body, dict) else as_list(body)
    return [x for x in (live_order(as_dict(o)) for o in items) if x is not None]


def order_status_result(order_id: str, body: Any) -> m.OrderStatusResult:
    b = as_dict(body)
    ibkr_status = as_text(b.get("order_status"))
    return m.OrderStatusResult(
        order_id=mp.id_str(b.get("order_id")) or order_id, account_id=as_text(b.get("account")),
        conid=to_int(b.get("conid")), symbol=as_text(b.get("symbol")), side=mp.side(b.get("side")),  # type: ignore[arg-type]
        order_type=mp.order_type_in(b.get("order_type")), status=mp.order_status(ibkr_status),  # type: ignore[arg-type]
        ibkr_status=ibkr_status, quantity=dec(b.get("total_size") or b.get("size")),
        filled_quantity=dec(b.get("cum_fill")), limit_price=dec(b.get("limit_price")),
        stop_price=dec(b.get("stop_price")), avg_price=dec(b.get("average_price")), tif=as_text(b.get("tif")),
        description=as_text(b.get("order_description")),
    )


def whatif(body: Any) -> m.WhatIfResult:
    b = as_dict(body)
    amount, equity, initial, maint, pos = (as_dict(b.get(k)) for k in ("amount", "equity", "initial", "maintenance",
                                                                    "position"))
    warn = b.get("warn") or "; ".join(str(x) for x in as_list(b.get("warns"))) or None
    error = b.get("error") or "; ".join(str(x) for x in as_list(b.get("errors"))) or None
    return m.WhatIfResult(
        amount=dec(amount.get("amount")), commission=dec(amount.get("commission")), total=dec(amount.get("total")),
        equity_change=dec(equity.get("change")), initial_margin_change=dec(initial.get("change")),
        initial_margin_after=dec(initial.get("after")), maintenance_margin_change=dec(maint.get("change")),
        maintenance_margin_after=dec(maint.get("after")), position_after=dec(pos.get("after")),
        warning=as_text(warn), error=as_text(error),
    )


def trades(body: Any) -> list[m.Trade]:
    out = []
    for t in as_list(body):
        t = as_dict(t)
        qty, price = dec(t.get("size")), dec(t.get("price"))
        if not t.get("execution_id") or qty is None or price is None:
            continue
        out.append(m.Trade(
            execution_id=str(t["execution_id"]), account_id=as_text(t.get("account") or t.get("accountCode")),
            order_id=mp.id_str(t.get("order_id")), client_order_id=as_text(t.get("order_ref")),
            conid=to_int(t.get("conid")), symbol=as_text(t.get("symbol")), sec_type=mp.asset_class(t.get("sec_type")),
            side=mp.side(t.get("side")), quantity=qty, price=price,  # type: ignore[arg-type]
            commission=dec(t.get("commission")), net_amount=dec(t.get("net_amount")),
            exchange=as_text(t.get("exchange")),
            executed_at=mp.ms_time(t.get("trade_time_r")) or mp.ibkr_time(t.get("trade_time")),
        ))
    return out
