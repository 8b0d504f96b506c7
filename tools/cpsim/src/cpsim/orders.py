"""Order records, pending questions and the book that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

#: A client order id (cOID) may be used again this long after its order.
COID_REUSE_AFTER = timedelta(hours=24)
WORKING = frozenset({"PendingSubmit", "PreSubmitted", "Submitted"})
TERMINAL = frozenset({"Filled", "Cancelled", "Inactive"})
FILTERS: dict[str, str] = {
    "inactive": "Inactive",
    "pending_submit": "PendingSubmit",
    "pre_submitted": "PreSubmitted",
    "submitted": "Submitted",
    "filled": "Filled",
    "pending_cancel": "PendingCancel",
    "cancelled": "Cancelled",
    "warn_state": "WarnState",
    "sort_by_time": "",
}


@dataclass
class Order:
    """One order as the simulated gateway tracks it."""

    order_id: int
    account: str
    conid: int
    conidex: str
    symbol: str
    sec_type: str
    side: str  # BUY | SELL
    order_type: str  # MKT | LMT | STP | STP_LMT
    quantity: Decimal
    tif: str
    created_at: datetime
    limit: Decimal | None = None
    stop: Decimal | None = None
    coid: str | None = None
    parent_coid: str | None = None
    outside_rth: bool = False
    legs: list[tuple[int, int]] = field(default_factory=list)
    filled: Decimal = Decimal(0)
    avg_fill: Decimal = Decimal(0)
    status: str = "PendingSubmit"
    history: list[str] = field(default_factory=lambda: ["PendingSubmit"])
    triggered: bool = False
    last_fill_at: datetime | None = None
    updated_at: datetime | None = None
    day_trade_counted: bool = False
    cancel_reason: str | None = None
    #: A DAY order ends at the close of its session (exchange mode; `expiry.py`); None: it never expires.
    expires_at: datetime | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def remaining(self) -> Decimal:
        """Quantity not filled yet."""
        return self.quantity - self.filled

    @property
    def working(self) -> bool:
        """Still able to fill or be cancelled."""
        return self.status in WORKING

    def set_status(self, status: str, now: datetime) -> None:
        """Move to `status`, keeping the history of transitions."""
        if status != self.status:
            self.status = status
            self.history.append(status)
        self.updated_at = now


@dataclass
class Pending:
    """Orders waiting for the answers to IBKR's questions."""

    reply_id: str
    drafts: list[dict[str, Any]]
    questions: list[str]
    created_at: datetime
    account: str
    modify_of: int | None = None


@dataclass
class OrderBook:
    """All orders of the simulator, plus what clients sent."""

    next_id: int = 1_200_000_000
    orders: dict[int, Order] = field(default_factory=dict)
    by_coid: dict[str, Order] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    injected: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    modifications: list[dict[str, Any]] = field(default_factory=list)
    executions_seq: int = 0

    def new_id(self) -> int:
        """Next order id (IBKR's are 9-10 digit integers)."""
        self.next_id += 7
        return self.next_id

    def coid_taken(self, coid: str, now: datetime) -> bool:
        """IBKR refuses a cOID used in the last 24 hours (REFERENCE.md 7.4: "unique per 24 h"), whatever
        became of that order: `Order couldn't be submitted: Local order ID=... is already registered.`"""
        earlier = self.by_coid.get(coid)
        return earlier is not None and now - earlier.created_at < COID_REUSE_AFTER

    def add(self, order: Order) -> None:
        """Register an accepted order."""
        self.orders[order.order_id] = order
        if order.coid:
            self.by_coid[order.coid] = order

    def working(self) -> list[Order]:
        """Orders that can still fill."""
        return [o for o in self.orders.values() if o.working]

    def visible(self, since: datetime | None) -> list[Order]:
        """Orders the current brokerage session knows: working ones, plus any touched since it began."""
        out = []
        for o in self.orders.values():
            if o.working or since is None or (o.updated_at or o.created_at) >= since:
                out.append(o)
        return sorted(out, key=lambda o: (o.created_at, o.order_id), reverse=True)

    def invalidate_pending(self) -> None:
        """Another order request arrived: outstanding questions can no longer be answered."""
        self.pending.clear()
