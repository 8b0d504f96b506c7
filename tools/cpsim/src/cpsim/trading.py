"""The order engine: place, questions and replies, modify, cancel, what-if, and fills on each tick."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from cpsim import expiry, fills, hours, questions
from cpsim.accounts import Account, Position, commission
from cpsim.market import SPREAD_CONID, Instrument, Quote
from cpsim.orders import Order, Pending

if TYPE_CHECKING:
    from cpsim.state import SimState

Reply = tuple[int, Any]


class OrderError(Exception):
    """A rejected order: HTTP status and the JSON body IBKR would send."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": message}


def _dec(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise OrderError(f"Bad Request: {name} must be a number", 500)
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise OrderError(f"Bad Request: {name} must be a number", 500) from exc


def market_open(state: SimState, now: datetime, outside_rth: bool = False) -> bool:
    """Whether an order can work now: always in `always` mode, else in exchange hours (`hours.py`)."""
    return hours.is_open(state.market_hours, now, outside_rth)


def _draft(state: SimState, raw: Any, account: str) -> dict[str, Any]:
    """Validate one order object of a request; returns the normalised draft."""
    if not isinstance(raw, dict):
        raise OrderError("Bad Request: each order must be a JSON object", 500)
    side = raw.get("side")
    if not isinstance(side, str) or side.upper() not in ("BUY", "SELL"):
        raise OrderError("Bad Request: side must be BUY or SELL", 500)
    otype = fills.ORDER_TYPES.get(str(raw.get("orderType", "")).upper())
    if otype is None:
        raise OrderError(f"Bad Request: unsupported orderType {raw.get('orderType')!r}", 500)
    qty = _dec(raw.get("quantity"), "quantity")
    if qty <= 0:
        raise OrderError("Bad Request: quantity must be positive", 500)
    price = _dec(raw["price"], "price") if raw.get("price") is not None else None
    aux = _dec(raw["auxPrice"], "auxPrice") if raw.get("auxPrice") is not None else None
    limit, stop = (price, None) if otype in ("LMT", "MKT") else (None, price) if otype == "STP" else (price, aux)
    if otype == "STP" and stop is None:
        stop = aux
    if otype in ("LMT", "STP_LMT") and limit is None:
        raise OrderError("Bad Request: price is required for limit orders", 500)
    if otype in ("STP", "STP_LMT") and stop is None:
        raise OrderError("Bad Request: a stop price is required for stop orders", 500)
    conidex = raw.get("conidex")
    legs: list[tuple[int, int]] = []
    if isinstance(conidex, str) and ";;;" in conidex:
        parsed = fills.parse_combo(conidex)
        if parsed is None:
            raise OrderError(f"Bad Request: malformed conidex {conidex!r}", 500)
        conid, legs = parsed
        for leg, _ in legs:
            if state.market.get(leg) is None:
                raise OrderError(f"Invalid contract id: {leg}")
        symbol, sec_type = state.market.instruments[legs[0][0]].symbol, "BAG"
    else:
        source = raw.get("conid", conidex.split("@")[0] if isinstance(conidex, str) else None)
        try:
            conid = int(source)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise OrderError("Bad Request: conid or conidex is required", 500) from exc
        inst = state.market.get(conid)
        if inst is None:
            raise OrderError(f"Invalid contract id: {conid}")
        symbol, sec_type, conidex = inst.symbol, inst.sec_type, str(conid)
    tif = str(raw.get("tif", "DAY")).upper()
    coid = raw.get("cOID")
    return {
        "conid": conid,
        "conidex": conidex,
        "legs": legs,
        "symbol": symbol,
        "sec_type": sec_type,
        "side": side.upper(),
        "order_type": otype,
        "quantity": qty,
        "limit": limit,
        "stop": stop,
        "tif": tif,
        "coid": str(coid) if coid is not None else None,
        "parent": raw.get("parentId"),
        "outside_rth": bool(raw.get("outsideRTH", False)),
        "account": account,
        "body": raw,
    }


def quote_for(state: SimState, conid: int, legs: list[tuple[int, int]]) -> Quote | None:
    """The instrument's quote, or the combo's net quote."""
    if legs:
        parts = [(state.market.quote(c), r) for c, r in legs]
        if any(q is None for q, _ in parts):
            return None
        return fills.combo_quote([(q, r) for q, r in parts if q is not None])
    return state.market.quote(conid)


def _check_funds(state: SimState, acct: Account, d: dict[str, Any]) -> None:
    q = quote_for(state, d["conid"], d["legs"])
    if q is None:
        return
    inst = state.market.get(d["legs"][0][0] if d["legs"] else d["conid"])
    mult = inst.multiplier if inst else 1
    px = d["limit"] or (q.ask if d["side"] == "BUY" else q.bid)
    m = acct.metrics(state.price, state.today())
    if acct.account_type == "cash" and d["side"] == "SELL" and not d["legs"]:
        held = acct.positions[d["conid"]].quantity if d["conid"] in acct.positions else Decimal(0)
        if d["quantity"] > held:
            raise OrderError("Order rejected: short sales are not allowed in a cash account.")
    if d["side"] == "BUY":
        cost = d["quantity"] * abs(px) * mult
        limit = m["cash"] if acct.account_type == "cash" else m["buying_power"]
        if cost > limit:
            raise OrderError(
                f"Your order is not accepted because your Equity with Loan Value of [{m['equity']:.2f} USD] is "
                f"insufficient to cover the Initial Margin requirement of [{cost:.2f} USD]."
            )


def place(state: SimState, account: str, raw_orders: list[Any]) -> Reply:
    """POST /iserver/account/{id}/orders."""
    book, now = state.book, state.clock.now()
    book.invalidate_pending()
    for raw in raw_orders:
        entry = dict(raw) if isinstance(raw, dict) else {"value": raw}
        entry.setdefault("cOID", None)
        entry["sim"] = {"account": account, "received_at": now.isoformat(), "outcome": "pending", "order_id": None}
        book.received.append(entry)
    try:
        drafts = [_draft(state, raw, account) for raw in raw_orders]
        for d in drafts:
            if d["coid"] and book.coid_taken(d["coid"], now):
                raise OrderError(f"Order couldn't be submitted: Local order ID={d['coid']} is already registered.")
        _check_funds(state, state.accounts[account], drafts[0])
    except OrderError as err:
        _mark_received(state, len(raw_orders), "rejected", None)
        return err.status, err.body
    asked = _questions(state, drafts[0])
    if asked:
        return _ask(state, Pending("", drafts, asked, now, account))
    return _accept(state, drafts, account)


def _questions(state: SimState, d: dict[str, Any]) -> list[str]:
    q = quote_for(state, d["conid"], d["legs"])
    last = q.last if q is not None else None
    ids = list(state.book.injected)
    state.book.injected.clear()
    ids += questions.default_questions(
        d["order_type"], d["side"], d["limit"], d["stop"], last, state.config.price_constraint_pct, d["quantity"]
    )
    seen: dict[str, None] = {}
    for i in ids:
        if i not in state.session.suppressed:
            seen.setdefault(i, None)
    return list(seen)


def _describe(d: dict[str, Any]) -> str:
    px = f" {d['order_type']} {d['limit']:.2f}" if d["limit"] is not None else f" {d['order_type']}"
    return f"{d['side']} {fmt_qty(d['quantity'])} {d['symbol']}{px}"


def _ask(state: SimState, pending: Pending) -> Reply:
    message_id = pending.questions[0]
    pending.reply_id = str(uuid.uuid4())
    state.book.pending = {pending.reply_id: pending}
    body = [
        {
            "id": pending.reply_id,
            "message": [questions.text(message_id, _describe(pending.drafts[0]), state.config.price_constraint_pct)],
            "isSuppressed": False,
            "messageIds": [message_id],
            "messageOptions": ["Yes", "No"],
        }
    ]
    return 200, body


def reply(state: SimState, reply_id: str, confirmed: Any) -> Reply:
    """POST /iserver/reply/{replyId}."""
    now = state.clock.now()
    pending = state.book.pending.get(reply_id)
    if pending is None or (now - pending.created_at).total_seconds() > state.config.reply_ttl_s:
        state.book.pending.pop(reply_id, None)
        return 400, {"error": f"reply id not found: '{reply_id}'"}
    del state.book.pending[reply_id]
    if confirmed is not True:
        if pending.modify_of is None:
            _mark_received(state, len(pending.drafts), "declined", None)
        return 400, {"error": "order not confirmed", "statusCode": 400}
    pending.questions.pop(0)
    if pending.questions:
        pending.created_at = now
        return _ask(state, pending)
    if pending.modify_of is not None:
        from cpsim.order_ops import apply_modify

        return apply_modify(state, state.book.orders[pending.modify_of], pending.drafts[0])
    for d in pending.drafts:
        if d["coid"] and state.book.coid_taken(d["coid"], now):
            _mark_received(state, len(pending.drafts), "rejected", None)
            return 200, {"error": f"Order couldn't be submitted: Local order ID={d['coid']} is already registered."}
    return _accept(state, pending.drafts, pending.account)


def _mark_received(state: SimState, n: int, outcome: str, ids: list[int] | None) -> None:
    for i, entry in enumerate(state.book.received[-n:] if n else []):
        entry["sim"]["outcome"] = outcome
        entry["sim"]["order_id"] = ids[i] if ids and i < len(ids) else None


def _accept(state: SimState, drafts: list[dict[str, Any]], account: str) -> Reply:
    now, book = state.clock.now(), state.book
    created: list[Order] = []
    for d in drafts:
        o = Order(
            book.new_id(), account, d["conid"], d["conidex"], d["symbol"], d["sec_type"], d["side"],
            d["order_type"], d["quantity"], d["tif"], now, d["limit"], d["stop"], d["coid"], d["parent"],
            d["outside_rth"], d["legs"], body=d["body"], updated_at=now,
        )
        book.add(o)
        created.append(o)
        expiry.stamp(state, o, now)
        o.set_status(_resting_status(state, o, now), now)
    _mark_received(state, len(drafts), "accepted", [o.order_id for o in created])
    body = [{"order_id": str(o.order_id), "order_status": o.status, "encrypt_message": "1"} for o in created]
    for o in created:
        process(state, o, now)
    return 200, body


def _held(state: SimState, o: Order, now: datetime) -> bool:
    """Waiting for its bracket parent to fill, or for the market to open."""
    if o.parent_coid and not (
        o.parent_coid in state.book.by_coid and state.book.by_coid[o.parent_coid].status == "Filled"
    ):
        return True
    return not market_open(state, now, o.outside_rth)


def _resting_status(state: SimState, o: Order, now: datetime) -> str:
    if _held(state, o, now):
        return "PreSubmitted"
    if o.order_type in ("STP", "STP_LMT") and not o.triggered:
        return "PreSubmitted"
    return "Submitted"


def process(state: SimState, o: Order, now: datetime) -> None:
    """Try to fill a working order against the current quote."""
    if not o.working or _held(state, o, now):
        return
    q = quote_for(state, o.conid, o.legs)
    if q is None:
        return
    if o.order_type in ("STP", "STP_LMT") and not o.triggered:
        if o.stop is None or not fills.triggered(o.side, o.stop, q.last):
            return
        o.triggered = True
    if o.status == "PreSubmitted":
        o.set_status("Submitted", now)
    if o.last_fill_at is not None and (now - o.last_fill_at).total_seconds() < 1:
        return
    price = fills.match(o.side, o.order_type, o.limit, q, combo=bool(o.legs))
    if price is None:
        return
    qty = fills.chunk(o.remaining, state.config.partial_fill_threshold)
    _fill(state, o, qty, price, now)


def _fill(state: SimState, o: Order, qty: Decimal, price: Decimal, now: datetime) -> None:
    acct = state.accounts[o.account]
    today = state.today()
    sign = 1 if o.side == "BUY" else -1
    closes_today = False
    legs = o.legs or [(o.conid, 1)]
    for conid, ratio in legs:
        inst = state.market.get(conid)
        assert inst is not None
        leg_q = state.market.quote(conid) if o.legs else None
        leg_px = price if leg_q is None else (leg_q.ask if sign * ratio > 0 else leg_q.bid)
        signed = qty * sign * ratio
        closes_today |= acct.apply_fill(position_template(inst), signed, leg_px, today)
        _record_execution(state, acct, o, inst, signed, leg_px, now)
    o.avg_fill = (o.avg_fill * o.filled + price * qty) / (o.filled + qty)
    o.filled += qty
    o.last_fill_at = o.updated_at = now
    if closes_today and not o.day_trade_counted:
        o.day_trade_counted = True
        acct.record_day_trade(today)
    if o.remaining <= 0:
        o.set_status("Filled", now)
        if o.coid:
            for child in state.book.working():
                if child.parent_coid == o.coid:
                    child.set_status(_resting_status(state, child, now), now)
                    process(state, child, now)
    state.positions_changed(o.account)


def position_template(inst: Instrument) -> Position:
    """An empty position for an instrument of the universe."""
    return Position(
        inst.conid,
        inst.symbol,
        inst.sec_type,
        Decimal(0),
        Decimal(0),
        inst.multiplier,
        expiry=f"{inst.expiry:%Y%m%d}" if inst.expiry else None,
        strike=inst.strike,
        right=inst.right or None,
        und_conid=inst.und_conid,
        name=inst.name,
        listing_exchange=inst.listing_exchange,
    )


def _record_execution(
    state: SimState, acct: Account, o: Order, inst: Instrument, signed: Decimal, price: Decimal, now: datetime
) -> None:
    state.book.executions_seq += 1
    acct.executions.append(
        {
            "execution_id": f"0000e0d5.{int(now.timestamp()):08x}.{state.book.executions_seq:02d}.01",
            "time": now,
            "conid": inst.conid,
            "symbol": inst.symbol,
            "side": "B" if signed > 0 else "S",
            "size": abs(signed),
            "price": price,
            "order_id": o.order_id,
            "order_ref": o.coid,
            "commission": commission(inst.sec_type, signed),
            "sec_type": inst.sec_type,
            "exchange": inst.listing_exchange,
            "company_name": inst.name,
            "multiplier": inst.multiplier,
            "description": inst.description,
        }
    )


def tick(state: SimState, now: datetime) -> None:
    """Expire DAY orders past their close (`expiry.py`), advance the random walk, let working orders fill, trigger
    or continue partial fills."""
    expiry.expire(state, now)
    moved = state.market.step(now)
    session = (market_open(state, now), market_open(state, now, True))
    opened, state.hours_state = session != state.hours_state, session
    working = state.book.working()
    if not working or (
        not moved and not opened and all(o.last_fill_at is None for o in working) and not state.dirty
    ):
        return
    state.dirty = False
    for o in sorted(working, key=lambda x: x.created_at):
        process(state, o, now)


__all__ = ["SPREAD_CONID", "OrderError", "place", "position_template", "process", "reply", "tick"]


def fmt_qty(x: Decimal) -> str:
    """Quantities without trailing zeros."""
    return format(x.normalize(), "f")
