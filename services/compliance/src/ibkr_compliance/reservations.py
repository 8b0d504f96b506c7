"""Buying power held by the orders compliance sent that the synced state may not show yet.

A decision is made on a snapshot of the account (the sync-worker's copy, or compliance's last good
one while the sync-worker restarts). Every order allowed since that snapshot was read is held here
until the snapshot shows it (its cOID is among the synced orders) or its send failed, so a burst of
orders decided on one snapshot cannot together spend more than that snapshot's buying power.

Reading the held orders, evaluating and holding the new one happen without an `await` in between,
so concurrent decisions in one process see each other. Other replicas' orders are seen once they
are synced; the ledger fills the holdings of an account again after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from ibkr_compliance.ledger import Ledger
from ibkr_compliance.rules import OrderSpec, WorkingOrder

#: The symbol of a hold that stands for an order's buying power requirement, not for a contract.
HOLD_SYMBOL = "BUYING-POWER-HOLD"


@dataclass(frozen=True)
class Held:
    """One order holding buying power: as a working order the rules see, and/or as its requirement."""

    client_order_id: str
    opened_at: datetime
    orders: tuple[WorkingOrder, ...]

    @cached_property
    def logged(self) -> list[dict[str, Any]]:
        """The held orders as a decision's state snapshot lists them (`reserved`), built once."""
        return [{"client_order_id": self.client_order_id, **o.model_dump(mode="json")} for o in self.orders]


def reserve_of(spec: OrderSpec, computed: dict[str, Any]) -> dict[str, Any] | None:
    """What the ledger keeps to hold an order again after a restart (None: nothing to hold).

    A single-leg order is held as the working order it is (the rules charge an opening buy its limit
    times its quantity, and see a working sell's pledged shares). An opening order the working-order
    model does not charge (a multi-leg order, a sale to open) also holds the requirement the decision
    computed for it (`buying_power`), as an opening buy of `HOLD_SYMBOL` at that amount.
    """
    reserve: dict[str, Any] = {}
    price = computed.get("price")
    if spec.symbol is not None and not spec.legs:
        limit = spec.limit_price if spec.limit_price is not None else spec.stop_price
        if limit is None and price is not None:
            limit = Decimal(str(price))
        if limit is not None:
            reserve = {"symbol": spec.symbol, "side": spec.side, "qty": str(spec.qty), "order_type": spec.order_type,
                       "limit_price": str(limit), "position_effect": spec.position_effect}
    charged = bool(reserve) and spec.side == "buy" and spec.position_effect != "close"
    reduction = computed.get("buying_power_reduction")
    if not charged and computed.get("opening") and reduction is not None and Decimal(str(reduction)) > 0:
        reserve["buying_power"] = str(reduction)
    return reserve or None


def held_orders(reserve: dict[str, Any]) -> tuple[WorkingOrder, ...]:
    """The working orders a `reserve_of` stands for."""
    orders = []
    if "symbol" in reserve:
        orders.append(WorkingOrder.model_validate({k: v for k, v in reserve.items() if k != "buying_power"}))
    if "buying_power" in reserve:
        orders.append(WorkingOrder(symbol=HOLD_SYMBOL, side="buy", qty=Decimal(1), position_effect="open",
                                   limit_price=Decimal(str(reserve["buying_power"]))))
    return tuple(orders)


class Reservations:
    """Orders held per account, for `keep` (longer than any snapshot may be used)."""

    def __init__(self, keep: timedelta) -> None:
        self.keep = keep
        self._held: dict[str, dict[str, Held]] = {}
        self._loaded: set[str] = set()

    def needs_load(self, account_id: str) -> bool:
        """Whether the account's holdings have not been read from the ledger yet (once per process)."""
        return account_id not in self._loaded

    async def load(self, ledger: Ledger, account_id: str, now: datetime) -> None:
        """Hold again the account's orders the ledger shows sent within `keep` (after a restart)."""
        entries = await ledger.holding(account_id, now - self.keep)
        self._loaded.add(account_id)
        for entry in entries:
            raw = entry.result.get("reserve")
            if isinstance(raw, dict):
                self.hold(account_id, entry.client_order_id, raw, entry.created_at)

    def hold(self, account_id: str, client_order_id: str, reserve: dict[str, Any] | None, now: datetime) -> bool:
        """Hold an order (its `reserve_of`); False when it is held already or has nothing to hold."""
        held = self._held.setdefault(account_id, {})
        if reserve is None or client_order_id in held:
            return False
        held[client_order_id] = Held(client_order_id, now, held_orders(reserve))
        return True

    def release(self, account_id: str, client_order_id: str) -> None:
        """The order never reached the gateway (or was refused): it holds nothing."""
        self._held.get(account_id, {}).pop(client_order_id, None)

    def pending(self, account_id: str, now: datetime, shown: Iterable[str], exclude: str | None) -> tuple[Held, ...]:
        """Held orders the snapshot does not show (`shown`: the cOIDs among its orders), but `exclude`."""
        held = self._held.get(account_id)
        if not held:
            return ()
        limit = now - self.keep
        for cid in [c for c, h in held.items() if h.opened_at < limit]:
            del held[cid]
        skip = set(shown)
        return tuple(h for cid, h in held.items() if cid not in skip and cid != exclude)
