"""Pure mappings between the contract's messages, the synced state and the rules engine's inputs.

The engine speaks symbols (stock tickers, OCC option symbols), sides `buy/sell` and types
`market/limit/stop/stop_limit`; the contract speaks conids, `BUY/SELL` and `MKT/LMT/STP/STP_LMT`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from ibkr_common.messages.bridge import OrderSpec as BridgeOrderSpec
from ibkr_common.messages.orders import Instrument, OrderRequest
from ibkr_common.messages.session import SessionStatusResult
from ibkr_common.messages.sync import AccountView, OrderView, PositionView
from ibkr_compliance.rules import (
    AccountState,
    BrokerSession,
    Execution,
    OrderLeg,
    OrderSpec,
    Position,
    Restriction,
    WorkingOrder,
)

ORDER_TYPES: dict[str, Literal["market", "limit", "stop", "stop_limit"]] = {
    "MKT": "market", "LMT": "limit", "STP": "stop", "STP_LMT": "stop_limit",
}
#: Statuses of the bridge/sync-worker that no longer work at the broker.
FINAL_STATUSES = frozenset({"filled", "cancelled", "inactive", "failed"})
#: IBKR's conid for US stock/option combos (the spread conid of a `conidex`).
US_COMBO_CONID = 28812380


def occ_symbol(root: str, expiry: date, right: str, strike: Decimal) -> str:
    """`AAPL`, 2026-05-15, `C`, 200 -> `AAPL260515C00200000`."""
    return f"{root.upper()}{expiry:%y%m%d}{right.upper()}{int(strike * 1000):08d}"


def instrument_symbol(instrument: Instrument) -> str | None:
    """The engine symbol of an instrument given by symbol and terms (None for a bare conid)."""
    if instrument.symbol is None:
        return None
    if instrument.sec_type == "OPT":
        assert instrument.expiry is not None and instrument.strike is not None and instrument.right is not None
        return occ_symbol(instrument.symbol, instrument.expiry, instrument.right, instrument.strike)
    return instrument.symbol.upper()


def contract_symbol(
    symbol: str | None, sec_type: str | None, expiry: date | None, right: str | None, strike: Decimal | None,
    underlying: str | None = None,
) -> str | None:
    """The engine symbol of a contract described by the broker (an option needs its terms)."""
    if sec_type in ("OPT", "FOP") and expiry is not None and right and strike is not None:
        root = underlying or (symbol.split()[0] if symbol else None)
        return occ_symbol(root, expiry, right, strike) if root else None
    if sec_type in ("OPT", "FOP"):
        return None
    return symbol.upper() if symbol else None


def position_symbol(p: PositionView) -> str | None:
    """The engine symbol of a synced position."""
    return contract_symbol(p.symbol, p.sec_type, p.expiry, p.right, p.strike, p.underlying_symbol)


def engine_side(side: str | None) -> Literal["buy", "sell"]:
    return "sell" if (side or "").upper() in ("SELL", "S", "SLD") else "buy"


def engine_order(request: OrderRequest, symbols: Sequence[str]) -> OrderSpec:
    """The engine's order: `symbols` holds the instrument's symbol, or one per leg."""
    common: dict[str, Any] = {
        "qty": request.quantity,
        "order_type": ORDER_TYPES[request.order_type],
        "time_in_force": request.tif.lower(),
        "limit_price": request.limit_price,
        "stop_price": request.stop_price,
        "position_effect": request.position_effect,
    }
    if request.legs is None:
        return OrderSpec(symbol=symbols[0], side=engine_side(request.side), **common)
    flip = request.side == "SELL"
    legs = tuple(
        OrderLeg(
            symbol=symbol,
            side=engine_side(("SELL" if leg.side == "BUY" else "BUY") if flip else leg.side),
            ratio=leg.ratio,
        )
        for leg, symbol in zip(request.legs, symbols, strict=True)
    )
    return OrderSpec(legs=legs, **common)


def bridge_order(request: OrderRequest, conids: Sequence[int]) -> BridgeOrderSpec:
    """The bridge's order (`orders[0]` of `bridge.orders.place`), cOID = client_order_id."""
    price: Decimal | None = None
    aux: Decimal | None = None
    if request.order_type == "LMT":
        price = request.limit_price
    elif request.order_type == "STP":
        price = request.stop_price
    elif request.order_type == "STP_LMT":
        price, aux = request.limit_price, request.stop_price
    target: dict[str, Any]
    if request.legs is None:
        target = {"conid": conids[0]}
    else:
        parts = [
            f"{conid}/{leg.ratio if leg.side == 'BUY' else -leg.ratio}"
            for leg, conid in zip(request.legs, conids, strict=True)
        ]
        target = {"conidex": f"{US_COMBO_CONID};;;{','.join(parts)}"}
    return BridgeOrderSpec.model_validate(
        {
            **target,
            "side": request.side,
            "quantity": request.quantity,
            "order_type": request.order_type,
            "price": price,
            "aux_price": aux,
            "tif": request.tif,
            "cOID": request.client_order_id,
        }
    )


def _order_symbol(order: OrderView, symbols: Mapping[int, str]) -> str | None:
    """The engine symbol of a synced order: a stock's ticker, an option's OCC symbol when its conid is known.
    A combo (`BAG`) has none: its conid is IBKR's spread conid and its `symbol` the underlying's, and the
    synced order does not say which legs it traded (so its fills are not taken as trades of the stock)."""
    if order.sec_type == "BAG":
        return None
    return symbols.get(order.conid or 0) or (order.symbol if order.sec_type not in ("OPT", "FOP") else None)


def _executions(orders: Sequence[OrderView], symbols: Mapping[int, str]) -> list[Execution]:
    result: list[Execution] = []
    for order in orders:
        symbol = _order_symbol(order, symbols)
        if not symbol:
            continue
        for fill in order.fills:
            when = fill.get("executed_at")
            qty = fill.get("quantity")
            if not when or qty is None:
                continue
            time = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
            price = fill.get("price")
            result.append(
                Execution(
                    time=time,
                    symbol=symbol.upper(),
                    side=engine_side(fill.get("side") or order.side),
                    qty=abs(Decimal(str(qty))),
                    price=Decimal(str(price)) if price is not None else None,
                    order_id=order.order_id,
                )
            )
    return result


def _working(orders: Sequence[OrderView], symbols: Mapping[int, str], exclude: str | None) -> list[WorkingOrder]:
    result: list[WorkingOrder] = []
    for order in orders:
        if order.status in FINAL_STATUSES or order.order_id == exclude:
            continue
        symbol = _order_symbol(order, symbols)
        qty = order.remaining_quantity if order.remaining_quantity is not None else order.quantity
        if not symbol or qty is None or qty <= 0:
            continue
        result.append(
            WorkingOrder(
                symbol=symbol.upper(),
                side=engine_side(order.side),
                qty=qty,
                order_type=ORDER_TYPES.get(order.order_type or "", "limit"),
                limit_price=order.limit_price,
                status=order.status,
            )
        )
    return result


@dataclass(frozen=True)
class Lines:
    """The engine's lists of an account (held positions, working orders, today's executions), derived
    once per synced copy of its positions and orders, with their decision-log form."""

    positions: tuple[Position, ...]
    open_orders: tuple[WorkingOrder, ...]
    executions: tuple[Execution, ...]

    @cached_property
    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """What `trading_compliance_log.state_snapshot` keeps of them."""
        return {
            "positions": [{"symbol": p.symbol, "qty": str(p.qty)} for p in self.positions],
            "open_orders": [
                {"symbol": o.symbol, "side": o.side, "qty": str(o.qty), "status": o.status} for o in self.open_orders
            ],
            "executions_today": [e.model_dump(mode="json", exclude_none=True) for e in self.executions],
        }

    @cached_property
    def snapshot_members(self) -> str:
        """`snapshot` as JSON object members (no braces), serialised once."""
        return json.dumps(self.snapshot, separators=(",", ":"))[1:-1]


def account_lines(positions: Sequence[PositionView] | None, orders: Sequence[OrderView] | None,
                  symbols: Mapping[int, str], exclude_order: str | None = None) -> Lines:
    """The engine's lists from the synced positions and orders (`exclude_order` left out of the working ones)."""
    held: list[Position] = []
    for p in positions or ():
        symbol = symbols.get(p.conid) or position_symbol(p)
        if symbol and p.quantity != 0:
            held.append(Position(symbol=symbol, qty=p.quantity, opened=p.opened_at))
    return Lines(tuple(held), tuple(_working(orders or (), symbols, exclude_order)),
                 tuple(_executions(orders or (), symbols)))


def account_state(
    *,
    account_id: str,
    environment: Literal["paper", "live"],
    live_enabled: bool,
    account: AccountView | None,
    positions: Sequence[PositionView] | None,
    positions_synced_at: datetime | None,
    orders: Sequence[OrderView] | None,
    session: SessionStatusResult | None,
    symbols: Mapping[int, str],
    now: datetime,
    exclude_order: str | None = None,
    lines: Lines | None = None,
    restrictions: Sequence[Restriction] = (),
    options_level: int | None = None,
) -> AccountState:
    """The engine's account from the synced pieces; with a piece missing it has no snapshot age.

    `lines`, when given, are `account_lines(positions, orders, symbols, exclude_order)` derived before.
    `options_level`, when given (the registry's per-account setting), is used instead of the synced one.
    """
    data: dict[str, Any] = {
        "broker": "ibkr",
        "environment": environment,
        "account_id": account_id,
        "live_trading_enabled": live_enabled,
        "restrictions": tuple(restrictions),
    }
    if account is not None:
        data.update(
            account_type="cash" if "cash" in (account.account_type or "").lower() else "margin",
            equity=account.net_liquidation if account.net_liquidation is not None else account.equity_with_loan,
            previous_equity=account.previous_day_equity,
            pattern_day_trader=bool(account.pdt_flag),
            options_level=account.options_level if options_level is None else options_level,
            option_buying_power=account.available_funds,
            stock_buying_power=account.buying_power,
            cash=account.cash,
            settled_cash=account.settled_cash,
            previous_maintenance_margin=account.maintenance_margin or Decimal(0),
            daytrades_remaining=account.day_trades_remaining,
            daytrades_remaining_future=tuple(
                v for v in (account.day_trades_remaining_t1, account.day_trades_remaining_t2,
                            account.day_trades_remaining_t3, account.day_trades_remaining_t4)
                if v is not None
            ),
        )
    lines = lines or account_lines(positions, orders, symbols, exclude_order)
    data["positions"] = lines.positions
    data["open_orders"] = lines.open_orders
    data["today_executions"] = lines.executions
    stamps = [account.synced_at if account else None, positions_synced_at if positions is not None else None]
    if orders is not None and all(s is not None for s in stamps):  # a missing piece has no age: the caller
        # refuses to decide without it (STATE_UNAVAILABLE), never on a made-up age
        oldest = min(s for s in stamps if s is not None)
        data["synced_at"] = oldest
        data["snapshot_age_s"] = max(Decimal(str(round((now - oldest).total_seconds(), 3))), Decimal(0))
    if session is None:
        data["session"] = BrokerSession(authenticated=False, competing=False, connected=False)
    else:
        data["session"] = BrokerSession(
            authenticated=session.authenticated,
            competing=session.competing,
            connected=session.connected,
        )
    return AccountState.model_validate(data)
