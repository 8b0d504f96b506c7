"""Pure diffing: what is stored vs what the broker says now -> writes and events.

Nothing here touches the database or the network. A position is closed only when the new
snapshot is complete (every page read); an order is never deleted (the broker's lists are
windows: live orders of this session, executions of the last days).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ibkr_sync_worker.normalize import (
    OrderRecord,
    PositionRecord,
    merge_fills,
)
from ibkr_sync_worker.normalize_account import AccountRecord

REJECTED = frozenset({"inactive", "failed"})
#: Figures every position carries; one that arrives unreadable (None) keeps its last stored value.
FIGURES = ("avg_cost", "avg_price", "market_price", "market_value", "unrealized_pnl")
#: Fills of a first-seen order count as "just seen" (worth a follow-up sync) only when this recent.
RECENT_S = 120.0


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored row: its primary key (None for account rows), record and content hash."""

    key: Any
    record: Any
    content_hash: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    payload: dict[str, Any]


@dataclass
class PositionPlan:
    inserts: list[PositionRecord] = field(default_factory=list)
    updates: list[tuple[Any, PositionRecord]] = field(default_factory=list)
    closes: list[tuple[Any, PositionRecord]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    held: int = 0
    #: conid -> figures that came unreadable and kept (or, after a size change, left unknown)
    figures_lost: dict[int, list[str]] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.closes)


def keep_last_figures(prev: PositionRecord, new: PositionRecord) -> tuple[PositionRecord, list[str]]:
    """`new` with the figures it lacks but `prev` had taken from `prev`, and the names of those figures.

    The bridge turns a figure it cannot read (a garbage string, a new type) into None. For an
    unchanged size every such figure keeps its last value; after a size change only the market
    price does (per unit), and value and P&L stay unknown rather than wrong.
    """
    lost = [f for f in FIGURES if getattr(new, f) is None and getattr(prev, f) is not None]
    if not lost:
        return new, []
    if new.quantity == prev.quantity:
        return replace(new, **{f: getattr(prev, f) for f in lost}), lost
    return (replace(new, market_price=prev.market_price) if "market_price" in lost else new), lost


def diff_positions(previous: dict[int, Stored], current: list[PositionRecord], complete: bool) -> PositionPlan:
    """Opened / changed / closed positions. Zero quantities count as absent."""
    plan = PositionPlan()
    seen: set[int] = set()
    for new in current:
        if new.quantity == 0 or new.conid in seen:
            continue
        seen.add(new.conid)
        old = previous.get(new.conid)
        if old is None:
            plan.inserts.append(new)
            plan.events.append(Event("positions.opened", {"position": new.payload(), "previous": None}))
            continue
        prev: PositionRecord = old.record
        new, lost = keep_last_figures(prev, new)
        if lost:
            plan.figures_lost[new.conid] = lost
        if old.content_hash == new.content_hash():
            continue
        plan.updates.append((old.key, new))
        if prev.business() != new.business():
            plan.events.append(Event("positions.changed", {"position": new.payload(), "previous": _pos_brief(prev)}))
    if complete:
        for conid, old in previous.items():
            if conid not in seen:
                plan.closes.append((old.key, old.record))
                plan.events.append(
                    Event("positions.closed", {"position": {**old.record.payload(), "quantity": Decimal(0)},
                                               "previous": _pos_brief(old.record)})
                )
        plan.held = len(seen)
    else:
        plan.held = len(seen | set(previous))
    return plan


def _pos_brief(p: PositionRecord) -> dict[str, Any]:
    return {"quantity": p.quantity, "avg_cost": p.avg_cost, "avg_price": p.avg_price}


@dataclass
class OrderPlan:
    inserts: list[tuple[OrderRecord, list[dict[str, Any]]]] = field(default_factory=list)
    updates: list[tuple[Any, OrderRecord, list[dict[str, Any]]]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    new_fills: int = 0

    @property
    def writes(self) -> int:
        return len(self.inserts) + len(self.updates)


def order_event_type(previous_status: str | None, order: OrderRecord) -> str:
    """`orders.filled|cancelled|rejected` for those outcomes, `orders.status_changed` otherwise."""
    if order.status == "filled":
        return "orders.filled"
    if order.status == "cancelled":
        return "orders.cancelled"
    if order.status in REJECTED:
        return "orders.rejected"
    return "orders.status_changed"


def _history_entry(order: OrderRecord, at: datetime) -> dict[str, Any]:
    return {"status": order.status, "at": at.isoformat(),
            "filled_quantity": None if order.filled_quantity is None else format(order.filled_quantity, "f")}


def _from_trades_onto(prev: OrderRecord, new: OrderRecord) -> OrderRecord:
    """Executions seen for an order we know better from live orders: keep the row, add the fills."""
    fills = merge_fills(prev.fills, new.fills)
    total = sum((Decimal(f["quantity"]) for f in fills), Decimal(0))
    filled = max(prev.filled_quantity or Decimal(0), total)
    status = prev.status
    if not prev.final and prev.quantity is not None and filled >= prev.quantity > 0:
        status = "filled"
    remaining = None if prev.quantity is None else max(prev.quantity - filled, Decimal(0))
    return replace(prev, fills=fills, filled_quantity=filled, remaining_quantity=remaining, status=status,
                   last_execution_at=max(filter(None, [prev.last_execution_at, new.last_execution_at]), default=None))


def diff_orders(
    previous: dict[str, Stored], current: dict[str, tuple[OrderRecord, bool]], now: datetime
) -> OrderPlan:
    """`current` maps order id -> (record, live): live records come from live orders, others from trades only."""
    plan = OrderPlan()
    for order_id, (new, live) in current.items():
        old = previous.get(order_id)
        if old is None:
            plan.inserts.append((new, [_history_entry(new, now)]))
            plan.events.append(Event(order_event_type(None, new), _order_payload(new, None, new.fills)))
            recent = new.last_execution_at is not None and (now - new.last_execution_at).total_seconds() < RECENT_S
            plan.new_fills += len(new.fills) if recent else 0
            continue
        prev: OrderRecord = old.record
        merged = replace(new, fills=merge_fills(prev.fills, new.fills)) if live else _from_trades_onto(prev, new)
        if not live and prev.client_order_id and not merged.client_order_id:
            merged = replace(merged, client_order_id=prev.client_order_id)
        if old.content_hash == merged.content_hash():
            continue
        known = {str(f.get("execution_id")) for f in prev.fills}
        fresh = [f for f in merged.fills if str(f.get("execution_id")) not in known]
        plan.new_fills += len(fresh)
        history = list(old.extra.get("status_history") or [])
        status_moved = merged.status != prev.status
        more_filled = (merged.filled_quantity or 0) > (prev.filled_quantity or 0)
        if status_moved or more_filled:
            history.append(_history_entry(merged, now))
        plan.updates.append((old.key, merged, history))
        if status_moved:
            plan.events.append(Event(order_event_type(prev.status, merged), _order_payload(merged, prev.status, fresh)))
        elif more_filled or fresh:
            plan.events.append(Event("orders.status_changed", _order_payload(merged, prev.status, fresh)))
    return plan


def _order_payload(order: OrderRecord, previous_status: str | None, new_fills: Any) -> dict[str, Any]:
    return {"order": order.payload(), "previous_status": previous_status, "new_fills": list(new_fills)}


@dataclass
class AccountPlan:
    write: AccountRecord | None = None
    insert: bool = False
    event: Event | None = None

    @property
    def writes(self) -> int:
        return 1 if self.write is not None else 0


def diff_account(
    previous: Stored | None, current: AccountRecord, announced: AccountRecord | None = None,
    market_move: Decimal | None = None,
) -> AccountPlan:
    """Write when anything moved; `account.updated` when cash, day trades or flags changed, or when a
    market-driven figure moved more than `market_move` (a fraction) from the last announced value."""
    if previous is None:
        return AccountPlan(current, True, Event("account.updated", {"account": current.columns(), "changed": None}))
    if previous.content_hash == current.content_hash():
        return AccountPlan()
    prev: AccountRecord = previous.record
    changed = [name for name, a, b in zip(_names(current), prev.business(), current.business(), strict=True) if a != b]
    if market_move is not None:
        base = announced or prev
        changed += [name for name in AccountRecord.MARKET
                    if _moved(getattr(base, name), getattr(current, name), market_move)]
    event = Event("account.updated", {"account": current.columns(), "changed": changed}) if changed else None
    return AccountPlan(current, False, event)


def _moved(before: Decimal | None, after: Decimal | None, fraction: Decimal) -> bool:
    if before is None or after is None:
        return before != after
    return abs(after - before) > fraction * abs(before)


def _names(record: AccountRecord) -> list[str]:
    return [name for name in record.columns() if name not in AccountRecord.MARKET]
