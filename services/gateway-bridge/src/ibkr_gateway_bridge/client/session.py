"""Session / auth endpoints (REFERENCE 7.1). Bodies here may hold session ids: never logged."""

from __future__ import annotations

from typing import Any

from ibkr_gateway_bridge.client.transport import Transport


class SessionApi:
    t: Transport

    async def auth_status(self, priority: str = "session") -> Any:
        return await self.t.call("POST", "/iserver/auth/status", priority=priority, quirks=False)

    async def tickle(self, priority: str = "session") -> Any:
        return await self.t.call("POST", "/tickle", priority=priority, quirks=False)

    async def sso_validate(self, priority: str = "session") -> Any:
        return await self.t.call("GET", "/sso/validate", priority=priority, quirks=False)

    async def ssodh_init(self, compete: bool = True) -> Any:
        return await self.t.init_brokerage(compete)

    async def reauthenticate(self, priority: str = "session") -> Any:
        body = await self.t.call("POST", "/iserver/reauthenticate", priority=priority, quirks=False)
        self.t.session_lost()
        return body

    async def logout(self, priority: str = "session") -> Any:
        body = await self.t.call("POST", "/logout", priority=priority, quirks=False)
        self.t.session_lost()
        return body
