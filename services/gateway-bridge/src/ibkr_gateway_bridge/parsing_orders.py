"""Parsing of Client Portal order bodies into typed models, and our orders into IBKR's order JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ibkr_common.messages import bridge as m
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge import mapping as mp
from ibkr_gateway_bridge.mapping import to_decimal as dec
from ibkr_gateway_bridge.mapping import to_int
from ibkr_gateway_bridge.parsing import as_dict, as_list, as_text


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


class LiveOrdersAnswer(BaseModel):
    """One answer of GET /iserver/account/orders."""

    orders: list[m.LiveOrder]
    still_filling: bool = Field(description=(
        "IBKR answered no orders with `snapshot: false`: right after a session's first call (or force) "
        "its list may still be filling."))


def live_orders_answer(body: Any) -> LiveOrdersAnswer:
    orders = live_orders(body)
    return LiveOrdersAnswer(orders=orders, still_filling=not orders and isinstance(body, dict)
                            and body.get("snapshot") is False)


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


def cancel_result(order_id: str, body: Any) -> m.CancelResult:
    """DELETE .../order/{orderId}: `{"order_id", "msg", "conid"}`, or `{"error"}` (NOT_FOUND / CONFLICT)."""
    b = as_dict(body)
    if b.get("error") is not None:
        text = str(b["error"])
        code = ErrorCode.NOT_FOUND if "exist" in text.lower() else ErrorCode.CONFLICT
        raise ServiceError(code, f"IBKR refused the cancel: {text}", {"gateway_error": text})
    conid = b.get("conid")
    return m.CancelResult(order_id=str(b.get("order_id", order_id)), message=b.get("msg"),
                          conid=conid if isinstance(conid, int) and conid > 0 else None)


def suppress_result(body: Any) -> m.SuppressResult:
    """/iserver/questions/suppress(/reset): `{"status": ...}`; anything else counts as submitted."""
    return m.SuppressResult(status=str(as_dict(body).get("status", "submitted")))


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
