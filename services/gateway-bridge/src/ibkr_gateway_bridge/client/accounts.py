"""Account endpoints (REFERENCE 7.2)."""

from __future__ import annotations

from ibkr_common.messages import bridge as m
from ibkr_gateway_bridge import parsing
from ibkr_gateway_bridge.client.gateway import Gateway


class AccountsApi:
    """The brokerage session's accounts and their P&L."""

    gateway: Gateway

    async def iserver_accounts(self, priority: str = "account") -> m.AccountsList:
        """GET /iserver/accounts (also the pre-flight of every /iserver/account... call)."""
        return parsing.accounts_list(await self.gateway.call("GET", "/iserver/accounts", priority=priority))

    async def pnl_partitioned(self, priority: str = "account") -> m.Pnl:
        """GET /iserver/account/pnl/partitioned."""
        return parsing.pnl(await self.gateway.call("GET", "/iserver/account/pnl/partitioned", priority=priority))
