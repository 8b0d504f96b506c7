"""Contract endpoints (REFERENCE 7.5)."""

from __future__ import annotations

from typing import Any

from ibkr_gateway_bridge.client.transport import Transport


class ContractsApi:
    t: Transport

    async def secdef_search(self, symbol: str, sec_type: str | None = None, name: bool = False,
                            priority: str = "account") -> Any:
        params: dict[str, Any] = {"symbol": symbol}
        if sec_type:
            params["secType"] = sec_type
        if name:
            params["name"] = "true"
        return await self.t.call("GET", "/iserver/secdef/search", params=params, priority=priority)

    async def secdef_strikes(self, conid: int, month: str, sec_type: str = "OPT", exchange: str | None = None,
                             priority: str = "account") -> Any:
        params: dict[str, Any] = {"conid": conid, "sectype": sec_type, "month": month}
        if exchange:
            params["exchange"] = exchange
        return await self.t.call("GET", "/iserver/secdef/strikes", params=params, priority=priority)

    async def secdef_info(self, conid: int, sec_type: str, month: str | None = None, strike: str | None = None,
                          right: str | None = None, exchange: str | None = None, priority: str = "account") -> Any:
        params: dict[str, Any] = {"conid": conid, "sectype": sec_type}
        for key, value in (("month", month), ("strike", strike), ("right", right), ("exchange", exchange)):
            if value is not None:
                params[key] = value
        return await self.t.call("GET", "/iserver/secdef/info", params=params, priority=priority)

    async def contract_info(self, conid: int, priority: str = "account") -> Any:
        return await self.t.call("GET", "/iserver/contract/{conid}/info", path={"conid": conid}, priority=priority)

    async def trsrv_secdef(self, conids: list[int], priority: str = "account") -> Any:
        return await self.t.call("GET", "/trsrv/secdef", params={"conids": ",".join(str(c) for c in conids)},
                                 priority=priority, allow_empty=True)
