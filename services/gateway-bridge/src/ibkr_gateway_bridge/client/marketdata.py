"""Market data endpoints (REFERENCE 7.6)."""

from __future__ import annotations

from typing import Any

from ibkr_gateway_bridge.client.transport import Transport


class MarketDataApi:
    t: Transport

    async def snapshot(self, conids: list[int], fields: list[str], priority: str = "account") -> Any:
        params = {"conids": ",".join(str(c) for c in conids), "fields": ",".join(fields)}
        return await self.t.call("GET", "/iserver/marketdata/snapshot", params=params, priority=priority)

    async def unsubscribe_all(self, priority: str = "account") -> Any:
        return await self.t.call("GET", "/iserver/marketdata/unsubscribeall", priority=priority)
