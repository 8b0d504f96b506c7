"""A typed Client Portal client: one method per endpoint, grouped like the API's sections."""

from __future__ import annotations

from ibkr_gateway_bridge.client.accounts import AccountsApi
from ibkr_gateway_bridge.client.contracts import ContractsApi
from ibkr_gateway_bridge.client.marketdata import MarketDataApi
from ibkr_gateway_bridge.client.orders import OrdersApi
from ibkr_gateway_bridge.client.portfolio import PortfolioApi
from ibkr_gateway_bridge.client.session import SessionApi
from ibkr_gateway_bridge.client.transport import CallRecord, GatewayError, Transport


class CpClient(SessionApi, AccountsApi, PortfolioApi, OrdersApi, ContractsApi, MarketDataApi):
    """All sections over one Transport (one httpx client, one limiter)."""

    def __init__(self, transport: Transport) -> None:
        self.t = transport

    async def aclose(self) -> None:
        await self.t.aclose()


__all__ = ["CallRecord", "CpClient", "GatewayError", "Transport"]
