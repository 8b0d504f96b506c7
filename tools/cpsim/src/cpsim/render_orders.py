"""JSON bodies of live orders, order status and trades."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from cpsim.clock import ms
from cpsim.market import Market
from cpsim.orders import Order

TYPE_NAMES = {
    "MKT": ("Market", "MARKET"),
    "LMT": ("Limit", "LIMIT"),
    "STP": ("Stop", "STOP"),
    "STP_LMT": ("Stop Limit", "STOP_LIMIT"),
}
TIF_WORDS = {"DAY": "Day", "GTC": "GTC", "IOC": "IOC", "OPG": "OPG"}
CCP_TEXT = {
    "PendingSubmit": "Pending Submit",
    "PreSubmitted": "Submitted",
    "Submitted": "Submitted",
    "Filled": "Filled",
    "Cancelled": "Cancelled",
    "PendingCancel": "Pending Cancel",
    "Inactive": "Inactive",
}
CCP_CODE = {
    "PendingSubmit": "0",
    "PreSubmitted": "0",
    "Submitted": "1",
    "Filled": "2",
    "PendingCancel": "3",
    "Cancelled": "4",
    "Inactive": "5",
}


def _qty(x: Decimal) -> str:
    return format(x.normalize(), "f")


def _px(x: Decimal | None) -> str:
    return f"{x:.2f}" if x is not None else ""


def description(o: Order, with_symbol: bool) -> str:
    """IBKR's orderDesc, e.g. `Buy 1 Limit 457.00, GTC` / `Bought 1 SPY Market, Day`."""
    done = o.status == "Filled"
    verb = ("Bought" if o.side == "BUY" else "Sold") if done else ("Buy" if o.side == "BUY" else "Sell")
    name = TYPE_NAMES[o.order_type][0]
    price = ""
    if o.order_type == "LMT":
        price = f" {_px(o.limit)}"
    elif o.order_type == "STP":
        price = f" {_px(o.stop)}"
    elif o.order_type == "STP_LMT":
        price = f" {_px(o.stop)}, {_px(o.limit)}"
    sym = f" {o.symbol}" if with_symbol else ""
    return f"{verb} {_qty(o.quantity)}{sym} {name}{price}, {TIF_WORDS.get(o.tif, o.tif)}"


def _size_and_fills(o: Order) -> str:
    return _qty(o.filled) if o.status == "Filled" else f"{_qty(o.filled)}/{_qty(o.quantity)}"


def live_order(o: Order, market: Market, now: datetime) -> dict[str, Any]:
    """Element of GET /iserver/account/orders (camelCase)."""
    inst = market.get(o.legs[0][0] if o.legs else o.conid)
    t = o.last_fill_at or o.updated_at or o.created_at
    body: dict[str, Any] = {
        "acct": o.account,
        "conidex": o.conidex,
        "conid": o.conid,
        "account": o.account,
        "orderId": o.order_id,
        "cashCcy": "USD",
        "sizeAndFills": _size_and_fills(o),
        "orderDesc": description(o, True),
        "description1": o.symbol,
        "ticker": o.symbol,
        "secType": o.sec_type,
        "listingExchange": inst.listing_exchange if inst else "SMART",
        "remainingQuantity": float(o.remaining),
        "filledQuantity": float(o.filled),
        "totalSize": float(o.quantity),
        "companyName": inst.name if inst else o.symbol,
        "status": o.status,
        "order_ccp_status": CCP_TEXT[o.status],
        "origOrderType": TYPE_NAMES[o.order_type][1],
        "supportsTaxOpt": "1",
        "lastExecutionTime": f"{t:%y%m%d%H%M%S}",
        "orderType": TYPE_NAMES[o.order_type][0],
        "bgColor": "#FFFFFF",
        "fgColor": "#000000",
        "isEventTrading": "0",
        "price": _px(o.limit) if o.limit is not None else (_px(o.stop) if o.order_type == "STP" else ""),
        "timeInForce": "CLOSE" if o.tif == "DAY" else o.tif,
        "lastExecutionTime_r": ms(t),
        "side": o.side,
        "outsideRTH": o.outside_rth,
    }
    if o.coid:
        body["order_ref"] = o.coid
    if o.filled > 0:
        body["avgPrice"] = _px(o.avg_fill)
    if o.stop is not None and o.order_type == "STP_LMT":
        body["auxPrice"] = _px(o.stop)
    if inst is not None and inst.sec_type == "OPT" and not o.legs:
        body["description2"] = inst.description
    if o.cancel_reason:  # OpenAPI liveOrdersResponse: "Only present for Cancelled orders" (expiry.py)
        body["order_cancellation_by_system_reason"] = o.cancel_reason
    return body


def order_status(o: Order, market: Market) -> dict[str, Any]:
    """GET /iserver/account/order/status/{id} (snake_case)."""
    inst = market.get(o.legs[0][0] if o.legs else o.conid)
    done = o.status in ("Filled", "Cancelled", "Inactive")
    body: dict[str, Any] = {
        "sub_type": None,
        "request_id": str(o.order_id % 100000),
        "server_id": "0",
        "order_id": o.order_id,
        "conidex": o.conidex,
        "conid": o.conid,
        "symbol": o.symbol,
        "side": o.side,
        "contract_description_1": o.symbol,
        "listing_exchange": inst.listing_exchange if inst else "SMART",
        "option_acct": "c",
        "company_name": inst.name if inst else o.symbol,
        "is_event_trading": "0",
        "order_desc": description(o, True),
        "order_status": o.status,
        "order_ccp_status": CCP_CODE[o.status],
        "order_status_description": "Order " + ("Filled" if o.status == "Filled" else o.status),
        "order_type": TYPE_NAMES[o.order_type][0],
        "size": f"{o.remaining:.1f}",
        "filled_quantity": f"{o.filled:.1f}",
        "cum_fill": f"{o.filled:.1f}",
        "remaining_quantity": f"{o.remaining:.1f}",
        "total_size": f"{o.quantity:.1f}",
        "total_cash_size": "0.0",
        "currency": "USD",
        "account": o.account,
        "price": _px(o.limit) or "0.0",
        "tif": o.tif,
        "bg_color": "#FFFFFF",
        "fg_color": "#000000",
        "order_not_editable": done,
        "editable_fields": "" if done else "\u001e",
        "cannot_cancel_order": done,
        "outside_rth": o.outside_rth,
        "all_or_none": False,
        "deactivate_order": False,
        "use_price_mgmt_algo": False,
        "sec_type": o.sec_type,
        "order_description": description(o, False),
        "order_description_with_contract": description(o, True),
        "clearing_id": "IB",
        "clearing_name": "IB",
        "alert_active": 1,
        "child_order_type": "0",
        "order_clearing_account": o.account,
        "size_and_fills": f"{_qty(o.filled)}/{_qty(o.quantity)}",
        "exit_strategy_display_price": _px(o.limit) or "0.0",
        "exit_strategy_chart_description": description(o, False),
        "exit_strategy_tool_availability": "1",
        "allowed_duplicate_opposite": True,
        "order_time": f"{o.created_at:%y%m%d%H%M%S}",
    }
    if o.limit is not None:
        body["limit_price"] = _px(o.limit)
    if o.stop is not None:
        body["stop_price"] = _px(o.stop)
    if o.filled > 0:
        body.update(
            {
                "fill_price": _px(o.avg_fill),
                "avg_fill_price": _px(o.avg_fill),
                "average_price": _px(o.avg_fill),
                "last_fill_price": _px(o.avg_fill),
            }
        )
    if o.cancel_reason:
        body["order_cancellation_by_system_reason"] = o.cancel_reason
    return body


def trade(ex: dict[str, Any], account: str) -> dict[str, Any]:
    """Element of GET /iserver/account/trades."""
    t: datetime = ex["time"]
    side = "Bought" if ex["side"] == "B" else "Sold"
    size, price = ex["size"], ex["price"]
    gross = size * price * ex.get("multiplier", 1)
    return {
        "execution_id": ex["execution_id"],
        "symbol": ex["symbol"],
        "supports_tax_opt": "1",
        "side": ex["side"],
        "order_description": f"{side} {_qty(size)} @ {_px(price)} on {ex.get('exchange') or 'ISLAND'}",
        "trade_time": f"{t:%Y%m%d-%H:%M:%S}",
        "trade_time_r": ms(t),
        "size": float(size),
        "price": _px(price),
        "order_ref": ex.get("order_ref") or "",
        "submitter": "user1234",
        "exchange": ex.get("exchange") or "ISLAND",
        "commission": _px(ex.get("commission", Decimal(0))),
        "net_amount": float(gross),
        "account": account,
        "accountCode": account,
        "account_allocation_name": account,
        "company_name": ex.get("company_name", ""),
        "contract_description_1": ex.get("description") or ex["symbol"],
        "sec_type": ex.get("sec_type", "STK"),
        "listing_exchange": ex.get("exchange") or "NASDAQ",
        "conid": ex["conid"],
        "conidEx": str(ex["conid"]),
        "clearing_id": "IB",
        "clearing_name": "IB",
        "liquidation_trade": "0",
        "is_event_trading": "0",
        "order_id": ex.get("order_id") or 0,
    }
