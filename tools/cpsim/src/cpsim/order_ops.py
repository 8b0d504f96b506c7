"""Changes to orders already placed (modify, cancel) and the what-if preview."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cpsim import expiry
from cpsim.accounts import commission
from cpsim.orders import Order, Pending
from cpsim.trading import (
    OrderError,
    Reply,
    _ask,
    _draft,
    _questions,
    _resting_status,
    fmt_qty,
    process,
    quote_for,
)

if TYPE_CHECKING:
    from cpsim.state import SimState


def modify(state: SimState, account: str, order_id: int, raw: Any) -> Reply:
    """POST /iserver/account/{id}/order/{orderId}: a single order object with the changed fields."""
    o = state.book.orders.get(order_id)
    state.book.invalidate_pending()
    state.book.modifications.append(
        {"order_id": order_id, "account": account, "body": raw, "received_at": state.clock.now().isoformat()}
    )
    if o is None or not o.working or o.account != account:
        return 200, {"error": f"OrderID {order_id} doesn't exist"}
    if not isinstance(raw, dict):
        return 500, {"error": "the body must be an order object"}
    merged = {**o.body, **raw}
    merged.pop("cOID", None)
    try:
        d = _draft(state, merged, account)
    except OrderError as err:
        return err.status, err.body
    if d["quantity"] < o.filled:
        return 200, {"error": "The new quantity is below the filled quantity."}
    asked = [q for q in _questions(state, d) if q != "o403"]
    if asked:
        return _ask(state, Pending("", [d], asked, state.clock.now(), account, modify_of=order_id))
    return apply_modify(state, o, d)


def apply_modify(state: SimState, o: Order, d: dict[str, Any]) -> Reply:
    now = state.clock.now()
    if not o.working:
        return 200, {"error": f"OrderID {o.order_id} doesn't exist"}
    if d["tif"] != o.tif:
        o.tif = d["tif"]
        expiry.stamp(state, o, now)  # a DAY order from now on ends at the close of the session open now or next
    o.quantity, o.limit, o.stop, o.order_type = d["quantity"], d["limit"], d["stop"], d["order_type"]
    o.body = {**o.body, **d["body"]}
    o.updated_at = now
    o.set_status(_resting_status(state, o, now) if o.status != "Submitted" else o.status, now)
    body = [{"order_id": str(o.order_id), "order_status": o.status, "encrypt_message": "1"}]
    process(state, o, now)
    return 200, body


def cancel(state: SimState, account: str, order_id: int) -> Reply:
    """DELETE /iserver/account/{id}/order/{orderId}; -1 cancels every working order of the account."""
    now = state.clock.now()
    if order_id == -1:
        for o in state.book.working():
            if o.account == account:
                o.set_status("PendingCancel", now)
                o.set_status("Cancelled", now)
        return 200, {"msg": "Request was submitted", "order_id": -1, "conid": -1, "account": None}
    o = state.book.orders.get(order_id)
    if o is None or o.account != account or not o.working:
        return 200, {"error": f"OrderID {order_id} doesn't exist"}
    at_exchange = o.status == "Submitted"
    o.set_status("PendingCancel", now)
    o.set_status("Cancelled", now)
    if at_exchange:
        return 200, {"msg": "Request was submitted", "order_id": order_id, "conid": o.conid, "account": account}
    return 200, {"msg": "Request was submitted", "order_id": order_id, "conid": -1, "account": None}


def whatif(state: SimState, account: str, raw_orders: list[Any]) -> Reply:
    """POST /iserver/account/{id}/orders/whatif: the margin impact, as display strings."""
    try:
        d = _draft(state, raw_orders[0], account)
    except OrderError as err:
        return err.status, err.body
    acct = state.accounts[account]
    q = quote_for(state, d["conid"], d["legs"])
    inst = state.market.get(d["legs"][0][0] if d["legs"] else d["conid"])
    mult = inst.multiplier if inst else 1
    px = d["limit"] or (q.ask if q is not None and d["side"] == "BUY" else q.bid if q is not None else Decimal(0))
    value = d["quantity"] * px * mult
    fee = commission(d["sec_type"], d["quantity"])
    m = acct.metrics(state.price, state.today())
    rate = Decimal("0.5") if d["sec_type"] == "STK" else Decimal(0)
    held = acct.positions[d["conid"]].quantity if d["conid"] in acct.positions else Decimal(0)
    change = d["quantity"] if d["side"] == "BUY" else -d["quantity"]
    seen = d["conid"] in state.session.preflight.snapshot_seen or bool(d["legs"])
    warn = (
        None
        if seen
        else (
            "21/You are trying to submit an order without having market data for this "
            "instrument. IB strongly recommends against this kind of blind trading which "
            "may result in erroneous or unexpected trades."
        )
    )
    unit = "Shares" if d["sec_type"] == "STK" else "Contracts"
    return 200, {
        "amount": {
            "amount": f"{money(value, 2)} USD ({fmt_qty(d['quantity'])} {unit})",
            "commission": f"{money(fee, 2)} USD",
            "total": f"{money(value + fee, 2)} USD",
        },
        "equity": _triple(m["equity"], -fee),
        "initial": _triple(m["init_margin"], value * rate),
        "maintenance": _triple(m["maint_margin"], value * rate / 2),
        "position": _triple(held, change),
        "warn": warn,
        "error": None,
    }


def _triple(current: Decimal, change: Decimal) -> dict[str, str]:
    return {"current": money(current), "change": money(change), "after": money(current + change)}


def money(x: Decimal, places: int = 0) -> str:
    """IBKR display number: thousands separators, `places` decimals."""
    return f"{x:,.{places}f}"
