"""What one order is decided on (`Gathered`), and what the decision log keeps of it (`Gathered.snapshot`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ibkr_common.db.types import RawJson
from ibkr_common.envelope import jsonable
from ibkr_common.messages.orders import Instrument
from ibkr_common.messages.sync import AccountView
from ibkr_compliance.mapping import Lines
from ibkr_compliance.rules import AccountState, MarketData


@dataclass
class Gathered:
    """The engine inputs for one order, and what the decision log keeps of them."""

    account: AccountState
    market: MarketData
    symbols: list[str]
    instruments: list[Instrument]
    missing: list[str] = field(default_factory=list)
    account_view: AccountView | None = None
    lines: Lines | None = None
    #: Client order ids the synced orders show (orders sent before that copy).
    shown: frozenset[str] = frozenset()
    #: The synced pieces are compliance's last good copy (a fresh read failed).
    last_good: bool = False
    #: Orders sent since the copy was read, holding buying power: `[{client_order_id, symbol, ...}]`.
    reserved: list[dict[str, Any]] = field(default_factory=list)
    #: `account_view` as JSON text (serialised once per synced copy, not per decision).
    account_json: str | None = None

    def snapshot(self, flags: dict[str, Any]) -> RawJson:
        """The state as used, with the decision's flags, for `trading_compliance_log.state_snapshot`
        (JSON text: the account's lists are serialised once per synced copy, not per decision)."""
        a = self.account
        lines = self.lines or Lines(a.positions, a.open_orders, a.today_executions)
        if self.account_json is not None:
            account = self.account_json
        else:
            account = self.account_view.model_dump_json() if self.account_view else "null"
        rest = {
            "session": a.session.model_dump(mode="json") if a.session else None,
            "snapshot_age_s": str(a.snapshot_age_s) if a.snapshot_age_s is not None else None,
            "quotes": {
                k: {"bid": str(q.bid) if q.bid is not None else None, "ask": str(q.ask) if q.ask is not None else None}
                for k, q in self.market.quotes.items()
            },
            "missing": self.missing,
            "last_good": self.last_good,
            "reserved": self.reserved,
            "restrictions": [r.model_dump(mode="json") for r in a.restrictions],
            "flags": flags,
        }
        # Every value above is plain JSON already; `jsonable` only for what a flag may carry (a Decimal).
        members = json.dumps(rest, separators=(",", ":"), default=jsonable)[1:-1]
        return RawJson(f'{{"account":{account},{members},{lines.snapshot_members}}}')
