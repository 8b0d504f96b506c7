"""IBKR's order questions ("reply messages"), answered by a policy table keyed on message id.

Actions: `auto_confirm` (answer yes, logged as given by the policy), `ask_user` (give the question
back to the caller as `confirmation_required`; `orders.confirm` answers), `reject` (answer no and
record the order as rejected). Never a blanket yes: an id missing from the table asks the user.

Default table and why (REFERENCE.md 7.4 lists the ids):

* ask_user for every question that bypasses a limit or a safeguard: o163 (price % constraint),
  o382 (tick-size limit), o383 (size limit), o451 (total value limit), o10138 (size-modification
  limit), o10153 (mandatory cap price), o403 (will trigger and fill immediately), o10151 and o10152
  (market / stop order risks), o10336 (limited liquidity), o2137 (crosses your own order),
  o10335 (rapid entry), o354 on live (no market data: a live order priced blind).
* auto_confirm only for texts that carry no order-specific risk: o354 on paper (paper accounts
  usually run without market-data subscriptions; the engine already priced the order from the
  synced state) and o10331 (a generic note that stop orders come in several types).
* reject for what this app never sends: FA allocations (p6, o2136), omnibus accounts (o10334),
  crypto (o10288, o10332) and cash-quantity orders (o10164, o10223).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ibkr_compliance.ledger import LedgerEntry
from ibkr_compliance.settings import pairs

Action = Literal["auto_confirm", "ask_user", "reject"]
ACTIONS: frozenset[str] = frozenset({"auto_confirm", "ask_user", "reject"})
WILDCARD = "*"

DEFAULT_POLICY: dict[str, Action] = {
    "o163": "ask_user",
    "o354@paper": "auto_confirm",
    "o354": "ask_user",
    "o382": "ask_user",
    "o383": "ask_user",
    "o403": "ask_user",
    "o451": "ask_user",
    "o2137": "ask_user",
    "o10138": "ask_user",
    "o10151": "ask_user",
    "o10152": "ask_user",
    "o10153": "ask_user",
    "o10331": "auto_confirm",
    "o10335": "ask_user",
    "o10336": "ask_user",
    "p6": "reject",
    "o2136": "reject",
    "o10164": "reject",
    "o10223": "reject",
    "o10288": "reject",
    "o10332": "reject",
    "o10334": "reject",
    WILDCARD: "ask_user",
}


@dataclass(frozen=True)
class Ruling:
    """What the policy says about one question (all its message ids together)."""

    action: Action
    by_id: dict[str, Action]


class QuestionPolicy:
    """The policy table, with per-environment entries (`o354@paper`) over plain ones (`o354`)."""

    def __init__(self, overrides: str = "", environment: str = "paper") -> None:
        table: dict[str, str] = dict(DEFAULT_POLICY)
        for key, action in pairs(overrides).items():
            if action not in ACTIONS:
                raise ValueError(f"question policy {key}: action must be one of {sorted(ACTIONS)}, got {action!r}")
            table[key] = action
        self.table: dict[str, Action] = {k: v for k, v in table.items() if v in ACTIONS}  # type: ignore[misc]
        self.environment = environment

    def action_for(self, message_id: str) -> Action:
        """The action for one message id in this service's environment."""
        for key in (f"{message_id}@{self.environment}", message_id, WILDCARD):
            if key in self.table:
                return self.table[key]
        return "ask_user"

    def rule(self, message_ids: Iterable[str]) -> Ruling:
        """The strictest action over a question's ids: reject > ask_user > auto_confirm.

        A question without any message id cannot be matched to the table: the user is asked.
        """
        by_id = {mid: self.action_for(mid) for mid in message_ids}
        if not by_id:
            return Ruling("ask_user", {})
        if "reject" in by_id.values():
            return Ruling("reject", by_id)
        if "ask_user" in by_id.values():
            return Ruling("ask_user", by_id)
        return Ruling("auto_confirm", by_id)


def open_question(entry: LedgerEntry) -> dict[str, Any]:
    """A `confirmation_required` ledger row as `compliance.status` lists it (`OpenQuestion`): the question
    as the row kept it and the order as placed (for a modify: as changed, the request waiting to be sent)."""
    question = entry.result.get("confirmation") or {}
    changed = entry.result.get("new_request")
    request: dict[str, Any] = changed if isinstance(changed, dict) else entry.request
    instrument = request.get("instrument") or {}
    legs = request.get("legs") or []
    sent = entry.result.get("order") or {}
    symbols = [str(leg.get("instrument", {}).get("symbol") or leg.get("instrument", {}).get("conid") or "?")
               for leg in legs if isinstance(leg, dict)]
    return {
        "client_order_id": entry.client_order_id,
        "reply_id": str(question.get("reply_id") or ""),
        "messages": [str(m) for m in question.get("messages") or []],
        "message_ids": [str(m) for m in question.get("message_ids") or []],
        "action": "modify" if isinstance(changed, dict) else "place",
        "order_id": entry.order_id,
        "order": {
            "symbol": instrument.get("symbol") or ("/".join(symbols) if symbols else None),
            "conid": instrument.get("conid") or (sent.get("conid") if not legs else None),
            "sec_type": instrument.get("sec_type"),
            "side": request.get("side"),
            "quantity": request.get("quantity"),
            "order_type": request.get("order_type"),
            "limit_price": request.get("limit_price"),
            "stop_price": request.get("stop_price"),
            "tif": request.get("tif"),
        },
        "asked_at": entry.updated_at,
    }
