"""Portfolio endpoints (REFERENCE 7.2 / 7.3); the /portfolio/accounts pre-flight is the transport's."""

from __future__ import annotations

from typing import Any

from ibkr_gateway_bridge.client.transport import Transport


class PortfolioApi:
    t: Transport

    async def portfolio_accounts(self, priority: str = "account") -> Any:
        return await self.t.call("GET", "/portfolio/accounts", priority=priority)

    async def portfolio_summary(self, account_id: str, priority: str = "account") -> Any:
        return await self.t.call("GET", "/portfolio/{accountId}/summary", path={"accountId": account_id},
                                 priority=priority)

    async def portfolio_ledger(self, account_id: str, priority: str = "account") -> Any:
        return await self.t.call("GET", "/portfolio/{accountId}/ledger", path={"accountId": account_id},
                                 priority=priority)

    async def positions_page(self, account_id: str, page: int, priority: str = "account") -> Any:
        return await self.t.call("GET", "/portfolio/{accountId}/positions/{pageId}",
                                 path={"accountId": account_id, "pageId": page}, priority=priority)

    async def position_by_conid(self, account_id: str, conid: int, priority: str = "account") -> Any:
        return await self.t.call("GET", "/portfolio/{accountId}/position/{conid}",
                                 path={"accountId": account_id, "conid": conid}, priority=priority)

    async def invalidate_positions(self, account_id: str, priority: str = "account") -> Any:
        return await self.t.call("POST", "/portfolio/{accountId}/positions/invalidate",
                                 path={"accountId": account_id}, body={}, priority=priority, retry_safe=True)
