"""A typed Client Portal client: one method per endpoint, grouped like the API's sections, typed answers."""

from __future__ import annotations

from ibkr_common.clock import Clock, SystemClock
from ibkr_gateway_bridge.client.accounts import AccountsApi
from ibkr_gateway_bridge.client.contracts import ContractsApi
from ibkr_gateway_bridge.client.gateway import CallRecord, Gateway, GatewayError
from ibkr_gateway_bridge.client.marketdata import MarketDataApi
from ibkr_gateway_bridge.client.orders import LiveOrdersAnswer, OrdersApi
from ibkr_gateway_bridge.client.portfolio import PortfolioApi
from ibkr_gateway_bridge.client.session import SessionApi


class ClientPortal(SessionApi, AccountsApi, PortfolioApi, OrdersApi, ContractsApi, MarketDataApi):
    """The Client Portal Web API over HTTP: every section over one `Gateway` (one httpx client, one limiter).

    Each method answers a pydantic model parsed from the gateway's JSON (unknown keys ignored, odd
    types tolerated); failures are GatewayError.
    """

    def __init__(self, gateway: Gateway, clock: Clock | None = None) -> None:
        self.gateway = gateway
        #: Dates what the gateway counts from now (SSO expiry).
        self.clock: Clock = clock or SystemClock()

    async def aclose(self) -> None:
        """Close the gateway's HTTP client."""
        await self.gateway.aclose()


__all__ = ["CallRecord", "ClientPortal", "Gateway", "GatewayError", "LiveOrdersAnswer"]
