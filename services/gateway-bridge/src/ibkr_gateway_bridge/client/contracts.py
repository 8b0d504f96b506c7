"""Contract endpoints (REFERENCE 7.5)."""

from __future__ import annotations

from typing import Any

from ibkr_common.messages import contracts as c
from ibkr_gateway_bridge import parsing_contracts
from ibkr_gateway_bridge.client.gateway import Gateway


class ContractsApi:
    """Contract search, option strikes, derivative and contract details."""

    gateway: Gateway

    async def secdef_search(self, symbol: str, sec_type: str | None = None, name: bool = False,
                            priority: str = "account") -> c.ContractSearchResult:
        """GET /iserver/secdef/search (must precede strikes/info for an underlier)."""
        params: dict[str, Any] = {"symbol": symbol}
        if sec_type:
            params["secType"] = sec_type
        if name:
            params["name"] = "true"
        body = await self.gateway.call("GET", "/iserver/secdef/search", params=params, priority=priority)
        return c.ContractSearchResult(contracts=parsing_contracts.search(body))

    async def secdef_strikes(self, conid: int, month: str, sec_type: str = "OPT", exchange: str | None = None,
                             priority: str = "account") -> c.OptionChain:
        """GET /iserver/secdef/strikes: the option chain of one underlier and month."""
        params: dict[str, Any] = {"conid": conid, "sectype": sec_type, "month": month}
        if exchange:
            params["exchange"] = exchange
        body = await self.gateway.call("GET", "/iserver/secdef/strikes", params=params, priority=priority)
        return parsing_contracts.option_chain(conid, month, body)

    async def secdef_info(self, conid: int, sec_type: str, month: str | None = None, strike: str | None = None,
                          right: str | None = None, exchange: str | None = None,
                          priority: str = "account") -> c.SecdefInfoResult:
        """GET /iserver/secdef/info: the derivative contracts matching month, strike and right."""
        params: dict[str, Any] = {"conid": conid, "sectype": sec_type}
        for key, value in (("month", month), ("strike", strike), ("right", right), ("exchange", exchange)):
            if value is not None:
                params[key] = value
        body = await self.gateway.call("GET", "/iserver/secdef/info", params=params, priority=priority)
        return c.SecdefInfoResult(contracts=parsing_contracts.secdef_info(body))

    async def contract_info(self, conid: int, priority: str = "account") -> c.ContractInfo:
        """GET /iserver/contract/{conid}/info."""
        body = await self.gateway.call("GET", "/iserver/contract/{conid}/info", path={"conid": conid},
                                       priority=priority)
        return parsing_contracts.contract_info(conid, body)

    async def trsrv_secdef(self, conids: list[int], priority: str = "account") -> c.SecdefResult:
        """GET /trsrv/secdef (an empty answer is no contracts)."""
        body = await self.gateway.call("GET", "/trsrv/secdef", params={"conids": ",".join(str(x) for x in conids)},
                                       priority=priority, allow_empty=True)
        return c.SecdefResult(contracts=parsing_contracts.secdef(body))
