"""Account endpoints (REFERENCE 7.2)."""

from __future__ import annotations

from typing import Any

from ibkr_gateway_bridge.client.transport import Transport


class AccountsApi:
    t: Transport

    async def iserver_accounts(self, priority: str = "account") -> Any:
        return await self.t.call("GET", "/iserver/accounts", priority=priority)

    async def switch_account(self, account_id: str, priority: str = "account") -> Any:
        return await self.t.call("POST", "/iserver/account", body={"acctId": account_id}, priority=priority)

    async def iserver_summary(self, account_id: str, priority: str = "account") -> Any:
        return await self.t.call("GET", "/iserver/account/{accountId}/summary", path={"accountId": account_id},
                                 priority=priority)

    async def pnl_partitioned(self, priority: str = "account") -> Any:
        return await self.t.call("GET", "/iserver/account/pnl/partitioned", priority=priority)
