"""Bridge replies to normalised records: exact Decimals (8 places, as stored), content hashes.

A position's `business` part (identity, quantity, cost, contract terms) decides `positions.changed`;
its `market` part (price, value, P&L) is kept current in the row but never raises an event, so a
moving market does not become an event storm. The content hash covers both, so a sync that finds
nothing new (not even a new price) writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ibkr_common.messages import bridge

SCALE = Decimal("1e-8")
ORDER_TYPES = {
    "lmt": "LMT", "limit": "LMT", "mkt": "MKT", "market": "MKT", "stp": "STP", "stop": "STP",
    "stp_lmt": "STP_LMT", "stop limit": "STP_LMT", "stop_limit": "STP_LMT", "stp lmt": "STP_LMT",
    "stoplimit": "STP_LMT", "trail": "TRAIL", "trailing stop": "TRAIL", "moc": "MOC", "loc": "LOC",
    "mit": "MIT", "lit": "LIT", "rel": "REL", "midprice": "MIDPRICE",
}
FINAL_STATUSES = frozenset({"filled", "cancelled", "inactive", "failed"})


class BadRecord(ValueError):
    """A broker record that cannot be trusted (missing identity, unreadable number)."""


def dec(value: Any) -> Decimal | None:
    """A Decimal rounded to the stored scale (8 places), or None; floats go through str()."""
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).replace(",", ""))
    except (InvalidOperation, ValueError) as exc:
        raise BadRecord(f"not a number: {value!r}") from exc
    if not number.is_finite():
        raise BadRecord(f"not a finite number: {value!r}")
    try:
        return number.quantize(SCALE).normalize() + 0  # `+ 0` turns -0 into 0
    except InvalidOperation as exc:
        raise BadRecord(f"number out of range: {value!r}") from exc


def text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    out = str(value).strip()
    return out[:limit] if out else None


def parse_expiry(value: Any) -> date | None:
    """`20250117`, `2025-01-17` or a date; None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    digits = re.sub(r"[^0-9]", "", str(value))
    if len(digits) != 8:
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def _canon(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in sorted(value.items())}
    return value


def digest(values: Any) -> str:
    """SHA-256 of a canonical JSON rendering (Decimals as plain strings, times in UTC)."""
    raw = json.dumps(_canon(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


# ---- positions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositionRecord:
    account_id: str
    conid: int
    quantity: Decimal
    symbol: str | None = None
    description: str | None = None
    sec_type: str | None = None
    currency: str | None = None
    avg_cost: Decimal | None = None
    avg_price: Decimal | None = None
    expiry: date | None = None
    strike: Decimal | None = None
    right: str | None = None
    multiplier: Decimal | None = None
    underlying_conid: int | None = None
    underlying_symbol: str | None = None
    market_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None

    MARKET = ("market_price", "market_value", "unrealized_pnl", "realized_pnl")

    def business(self) -> tuple[Any, ...]:
        """Identity, size, cost and contract terms: a change here is `positions.changed`."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in self.MARKET)

    def content_hash(self) -> str:
        return digest([getattr(self, f.name) for f in fields(self)])

    def columns(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def payload(self) -> dict[str, Any]:
        """The event payload (Decimals become strings in the envelope)."""
        return self.columns()


def position_from_bridge(p: bridge.Position, account_id: str) -> PositionRecord:
    """Normalise one position of a bridge page."""
    if not p.conid or p.conid <= 0:
        raise BadRecord("position without a conid")
    sec_type = text(p.sec_type, 8)
    sec_type = sec_type.upper() if sec_type else None
    option = sec_type in ("OPT", "FOP", "WAR")
    multiplier = dec(p.multiplier)
    if multiplier is not None and multiplier <= 0:
        multiplier = None  # IBKR sends 0.0 for stocks
    avg_price = dec(p.avg_price)
    avg_cost = dec(p.avg_cost)
    if avg_price is None and avg_cost is not None:
        avg_price = dec(avg_cost / (multiplier or 1))
    symbol = text(p.symbol, 64)
    return PositionRecord(
        account_id=account_id,
        conid=int(p.conid),
        quantity=dec(p.quantity) or Decimal(0),
        symbol=symbol,
        description=text(p.description, 255),
        sec_type=sec_type,
        currency=text(p.currency, 8),
        avg_cost=avg_cost,
        avg_price=avg_price,
        expiry=parse_expiry(p.expiry) if option else None,
        strike=dec(p.strike) if option else None,
        right=p.right if option else None,
        multiplier=multiplier,
        underlying_conid=(p.underlying_conid or None) if option else None,
        underlying_symbol=_underlying_symbol(p, symbol) if option else None,
        market_price=dec(p.market_price),
        market_value=dec(p.market_value),
        unrealized_pnl=dec(p.unrealized_pnl),
        realized_pnl=dec(p.realized_pnl),
    )


def position_from_row(row: Any) -> PositionRecord:
    """A stored row (ORM object or mapping) back into a record, for diffing."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    return PositionRecord(**{f.name: normalized(get(f.name)) for f in fields(PositionRecord)})


def normalized(value: Any) -> Any:
    return dec(value) if isinstance(value, Decimal) else value


def _underlying_symbol(p: bridge.Position, symbol: str | None) -> str | None:
    return text(p.underlying_symbol, 64) or (symbol.split()[0] if symbol else None)


# ---- orders ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRecord:
    account_id: str
    order_id: str
    status: str
    client_order_id: str | None = None
    conid: int | None = None
    symbol: str | None = None
    sec_type: str | None = None
    side: str | None = None
    order_type: str | None = None
    quantity: Decimal | None = None
    filled_quantity: Decimal | None = None
    remaining_quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    avg_fill_price: Decimal | None = None
    tif: str | None = None
    fills: tuple[dict[str, Any], ...] = field(default=())
    last_execution_at: datetime | None = None

    def content_hash(self) -> str:
        return digest([getattr(self, f.name) for f in fields(self)])

    def columns(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["fills"] = list(self.fills)
        return out

    def payload(self) -> dict[str, Any]:
        out = self.columns()
        out.pop("fills")
        return out

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def order_type_of(value: str | None) -> str | None:
    if not value:
        return None
    key = value.strip().lower()
    return ORDER_TYPES.get(key, key.upper().replace(" ", "_"))[:16]


#: IBKR's spellings of a time in force that differ from ours: the live-orders list shows a DAY order as CLOSE.
TIF_SPELLINGS = {"CLOSE": "DAY"}


def tif_of(value: Any) -> str | None:
    """Our time in force (`DAY`, `GTC`, `IOC`, ...) from the gateway's spelling."""
    spelled = text(value, 8)
    return TIF_SPELLINGS.get(spelled.upper(), spelled.upper()) if spelled else None


def order_from_live(o: bridge.LiveOrder, account_id: str) -> OrderRecord:
    """Normalise one live order. LMT/STP_LMT: `price` is the limit, a STP_LMT's `auxPrice` its stop; STP: the
    stop is `price` (as placed, REFERENCE.md 7.4), or `auxPrice` when the list gives one."""
    if not o.order_id:
        raise BadRecord("order without an order id")
    kind = order_type_of(o.order_type)
    limit = stop = None
    if kind == "STP":
        stop = dec(o.aux_price) if o.aux_price is not None else dec(o.price)
    else:
        limit = dec(o.price)
        stop = dec(o.aux_price) if kind == "STP_LMT" else None
    return OrderRecord(
        account_id=account_id,
        order_id=str(o.order_id)[:32],
        status=o.status,
        client_order_id=text(o.client_order_id, 64),
        conid=o.conid,
        symbol=text(o.symbol, 64),
        sec_type=text(o.sec_type, 8),
        side=o.side,
        order_type=kind,
        quantity=dec(o.quantity),
        filled_quantity=dec(o.filled_quantity),
        remaining_quantity=dec(o.remaining_quantity),
        limit_price=limit,
        stop_price=stop,
        avg_fill_price=dec(o.avg_price),
        tif=tif_of(o.tif),
        last_execution_at=o.last_execution_at.astimezone(UTC) if o.last_execution_at else None,
    )


def order_from_status(s: bridge.OrderStatusResult, previous: OrderRecord) -> OrderRecord:
    """An order the live list no longer shows, brought up to date from IBKR's order status."""
    quantity = dec(s.quantity) if s.quantity is not None else previous.quantity
    filled = dec(s.filled_quantity) if s.filled_quantity is not None else previous.filled_quantity
    remaining = quantity - filled if quantity is not None and filled is not None else previous.remaining_quantity
    return replace(
        previous, status=s.status, quantity=quantity, filled_quantity=filled, remaining_quantity=remaining,
        avg_fill_price=dec(s.avg_price) if s.avg_price is not None else previous.avg_fill_price,
    )


def fill_from_trade(t: bridge.Trade) -> dict[str, Any]:
    """One execution as kept in `ibkr_orders.fills` (JSON: Decimals as strings)."""
    return _canon(
        {
            "execution_id": t.execution_id,
            "quantity": dec(t.quantity),
            "price": dec(t.price),
            "side": t.side,
            "commission": dec(t.commission),
            "net_amount": dec(t.net_amount),
            "exchange": t.exchange,
            "executed_at": t.executed_at.astimezone(UTC) if t.executed_at else None,
        }
    )


def trade_order_id(t: bridge.Trade) -> str:
    """The order an execution belongs to; executions without one get their own pseudo order."""
    return str(t.order_id)[:32] if t.order_id else f"x{t.execution_id}"[:32]


def merge_fills(*groups: Any) -> tuple[dict[str, Any], ...]:
    """Union of fills by execution id (older fills drop out of the trades window, never out of the row)."""
    by_id: dict[str, dict[str, Any]] = {}
    for group in groups:
        for fill in group or ():
            by_id[str(fill.get("execution_id"))] = fill
    return tuple(sorted(by_id.values(), key=lambda f: (str(f.get("executed_at") or ""), str(f["execution_id"]))))


def order_from_trades(order_id: str, account_id: str, trades: list[bridge.Trade]) -> OrderRecord:
    """An order known only from its executions (placed in an earlier session or by another app)."""
    fills = merge_fills([fill_from_trade(t) for t in trades])
    total = sum((Decimal(f["quantity"]) for f in fills), Decimal(0))
    notional = sum((Decimal(f["quantity"]) * Decimal(f["price"]) for f in fills), Decimal(0))
    first = trades[0]
    times = [t.executed_at for t in trades if t.executed_at]
    return OrderRecord(
        account_id=account_id,
        order_id=order_id,
        status="filled",
        client_order_id=text(first.client_order_id, 64),
        conid=first.conid,
        symbol=text(first.symbol, 64),
        sec_type=text(first.sec_type, 8),
        side=first.side,
        quantity=dec(total),
        filled_quantity=dec(total),
        remaining_quantity=Decimal(0),
        avg_fill_price=dec(notional / total) if total else None,
        fills=fills,
        last_execution_at=max(times).astimezone(UTC) if times else None,
    )


def with_fills(order: OrderRecord, fills: tuple[dict[str, Any], ...]) -> OrderRecord:
    """The order with these fills, its last execution time taken from them when it has none."""
    if not fills:
        return order
    last = order.last_execution_at
    stamps = [f["executed_at"] for f in fills if f.get("executed_at")]
    if last is None and stamps:
        last = datetime.fromisoformat(max(stamps))
    return replace(order, fills=fills, last_execution_at=last)


def order_from_row(row: Any) -> OrderRecord:
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    values = {f.name: normalized(get(f.name)) for f in fields(OrderRecord)}
    values["fills"] = tuple(values["fills"] or ())
    return OrderRecord(**values)
