"""What each internal bridge operation answers with (`ibkr.<conn>.bridge.<op>`): its result model.

The AsyncAPI documents describe each operation's reply from this table.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from ibkr_common.messages import bridge as m
from ibkr_common.messages import contracts as c

BRIDGE_RESULTS: Final[dict[str, type[BaseModel]]] = {
    "session.status": m.SessionStatus, "session.tickle": m.TickleResult, "session.validate": m.ValidateResult,
    "session.init": m.SessionStatus, "session.reauthenticate": m.ReauthenticateResult, "session.logout": m.LogoutResult,
    "accounts.list": m.AccountsList, "accounts.portfolio": m.PortfolioAccounts, "accounts.summary": m.AccountSummary,
    "accounts.ledger": m.Ledger, "accounts.pnl": m.Pnl,
    "positions.list": m.Positions, "positions.page": m.Positions, "positions.get": m.Positions,
    "positions.invalidate": m.InvalidateResult,
    "orders.place": m.PlaceOrderResult, "orders.reply": m.PlaceOrderResult, "orders.cancel": m.CancelResult,
    "orders.modify": m.PlaceOrderResult, "orders.whatif": m.WhatIfResult, "orders.live": m.LiveOrders,
    "orders.status": m.OrderStatusResult, "orders.lookup": m.LookupResult, "orders.suppress": m.SuppressResult,
    "orders.suppress_reset": m.SuppressResult,
    "trades.list": m.Trades,
    "contracts.search": c.ContractSearchResult, "contracts.info": c.ContractInfo, "contracts.strikes": c.OptionChain,
    "contracts.secdef_info": c.SecdefInfoResult, "contracts.secdef": c.SecdefResult,
    "marketdata.snapshot": m.Snapshots,
}
