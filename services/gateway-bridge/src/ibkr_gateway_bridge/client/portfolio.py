"""Portfolio endpoints (REFERENCE 7.2 / 7.3); the /portfolio/accounts pre-flight is the gateway's."""

from __future__ import annotations

from ibkr_common.messages import bridge as m
from ibkr_gateway_bridge import parsing
from ibkr_gateway_bridge.client.gateway import Gateway


class PortfolioApi:
    """Portfolio accounts, summaries, ledgers and positions."""

    gateway: Gateway

    async def portfolio_accounts(self, priority: str = "account") -> m.PortfolioAccounts:
        """GET /portfolio/accounts."""
        return parsing.portfolio_accounts(await self.gateway.call("GET", "/portfolio/accounts", priority=priority))

    async def portfolio_summary(self, account_id: str, priority: str = "account") -> m.AccountSummary:
        """GET /portfolio/{accountId}/summary."""
        body = await self.gateway.call("GET", "/portfolio/{accountId}/summary", path={"accountId": account_id},
                                       priority=priority)
        return parsing.account_summary(account_id, body)

    async def portfolio_ledger(self, account_id: str, priority: str = "account") -> m.Ledger:
        """GET /portfolio/{accountId}/ledger."""
        body = await self.gateway.call("GET", "/portfolio/{accountId}/ledger", path={"accountId": account_id},
                                       priority=priority)
        return parsing.ledger(account_id, body)

    async def positions_page(self, account_id: str, page: int, priority: str = "account") -> m.Positions:
        """GET /portfolio/{accountId}/positions/{pageId}: one page (`has_more` when it was full)."""
        body = await self.gateway.call("GET", "/portfolio/{accountId}/positions/{pageId}",
                                       path={"accountId": account_id, "pageId": page}, priority=priority)
        return parsing.positions_page(account_id, page, body)

    async def position_by_conid(self, account_id: str, conid: int, priority: str = "account") -> m.Positions:
        """GET /portfolio/{accountId}/position/{conid}."""
        body = await self.gateway.call("GET", "/portfolio/{accountId}/position/{conid}",
                                       path={"accountId": account_id, "conid": conid}, priority=priority)
        return parsing.position_of(account_id, body)

    async def invalidate_positions(self, account_id: str, priority: str = "account") -> m.InvalidateResult:
        """POST /portfolio/{accountId}/positions/invalidate: the next positions call reads fresh ones."""
        await self.gateway.call("POST", "/portfolio/{accountId}/positions/invalidate", path={"accountId": account_id},
                                body={}, priority=priority, retry_safe=True)
        return m.InvalidateResult(invalidated=True)
