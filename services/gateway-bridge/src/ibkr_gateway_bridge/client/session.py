"""Session / auth endpoints (REFERENCE 7.1). Bodies here may hold session ids: never logged, never returned."""

from __future__ import annotations

from ibkr_common.clock import Clock
from ibkr_common.messages import bridge as m
from ibkr_gateway_bridge import parsing
from ibkr_gateway_bridge.client.gateway import Gateway


class SessionApi:
    """Auth status, tickle, SSO validation, opening and ending the brokerage session."""

    gateway: Gateway
    clock: Clock

    async def auth_status(self, priority: str = "session") -> m.SessionStatus:
        """POST /iserver/auth/status; an unhealthy answer forgets the session's pre-flights."""
        status = parsing.session_status(
            await self.gateway.call("POST", "/iserver/auth/status", priority=priority, quirks=False))
        self._check_session(status.authenticated, status.connected)
        return status

    async def tickle(self, priority: str = "session") -> m.TickleResult:
        """POST /tickle; an unhealthy answer forgets the session's pre-flights."""
        body = await self.gateway.call("POST", "/tickle", priority=priority, quirks=False)
        result = parsing.tickle(body, self.clock.now())
        self._check_session(result.authenticated, result.connected)
        return result

    def _check_session(self, authenticated: bool, connected: bool) -> None:
        """An unhealthy answer means the brokerage session IBKR knew is gone: pre-flights start over."""
        self.gateway.authenticated = authenticated and connected
        if not (authenticated and connected):
            self.gateway.session_lost()

    async def sso_validate(self, priority: str = "session") -> m.ValidateResult:
        """GET /sso/validate."""
        body = await self.gateway.call("GET", "/sso/validate", priority=priority, quirks=False)
        return parsing.validate(body, self.clock.now())

    async def ssodh_init(self, compete: bool = True) -> m.SessionStatus:
        """POST /iserver/auth/ssodh/init: open the brokerage session."""
        return parsing.session_status(await self.gateway.init_brokerage(compete))

    async def reauthenticate(self, priority: str = "session") -> m.ReauthenticateResult:
        """POST /iserver/reauthenticate; the pre-flights start over."""
        body = await self.gateway.call("POST", "/iserver/reauthenticate", priority=priority, quirks=False)
        self.gateway.session_lost()
        return parsing.reauthenticate(body)

    async def logout(self, priority: str = "session") -> m.LogoutResult:
        """POST /logout; the pre-flights start over."""
        body = await self.gateway.call("POST", "/logout", priority=priority, quirks=False)
        self.gateway.session_lost()
        return parsing.logout(body)
