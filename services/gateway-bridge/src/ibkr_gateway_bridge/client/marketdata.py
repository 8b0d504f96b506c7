"""Market data endpoints (REFERENCE 7.6)."""

from __future__ import annotations

from ibkr_common.messages import bridge as m
from ibkr_gateway_bridge import parsing_contracts
from ibkr_gateway_bridge.client.gateway import Gateway


class MarketDataApi:
    """Market data snapshots."""

    gateway: Gateway

    async def snapshot(self, conids: list[int], fields: list[str], priority: str = "account") -> m.Snapshots:
        """GET /iserver/marketdata/snapshot. A conid's first call only opens its stream (no data yet)."""
        params = {"conids": ",".join(str(c) for c in conids), "fields": ",".join(fields)}
        body = await self.gateway.call("GET", "/iserver/marketdata/snapshot", params=params, priority=priority)
        return parsing_contracts.snapshots(body)
