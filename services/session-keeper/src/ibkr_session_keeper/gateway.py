"""The session calls of the gateway-bridge (`ibkr.<conn>.bridge.session.*`), read as observations.

The keeper never talks HTTP: it asks the bridge over NATS. Whatever comes back (an answer, a
typed error, garbage, or silence) becomes an `Observation`; nothing here raises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.messages.bridge import (
    BridgeRequest,
    Empty,
    SessionInitRequest,
    SessionStatus,
    TickleResult,
    ValidateResult,
)
from ibkr_common.replies import ErrorCode
from ibkr_common.rpc import RpcError, unwrap_reply
from ibkr_session_keeper.state import Observation


class BridgeReply:
    """A decoded bridge reply: `result` when ok, else `code`/`message`/`details`."""

    def __init__(self, result: Any = None, code: str | None = None, message: str = "",
                 details: Any = None) -> None:
        self.result, self.code, self.message, self.details = result, code, message, details

    @property
    def ok(self) -> bool:
        return self.code is None


def decode_reply(raw: bytes) -> BridgeReply:
    """Decode `{"ok", "result" | "error"}`; anything else is a BAD_REPLY with detail."""
    try:
        return BridgeReply(result=unwrap_reply("bridge", raw))
    except RpcError as exc:
        return BridgeReply(code=exc.code, message=exc.message, details=exc.details)


def error_observation(reply: BridgeReply) -> Observation | None:
    """What a failed call says about the session; None when it says nothing (rate limited)."""
    if reply.code == ErrorCode.RATE_LIMITED:
        return None
    if reply.code == ErrorCode.NOT_AUTHENTICATED:
        if "no bridge" in reply.message.lower():
            return Observation("no_bridge", connected=True, detail=reply.message)
        return Observation("no_session", detail=reply.message)
    status = reply.details.get("status") if isinstance(reply.details, dict) else None
    detail = f"{reply.code}: {reply.message}" + (f" (HTTP {status})" if status else "")
    return Observation("gateway_error", detail=detail[:200])


def auth_observation(result: Any, model: type[TickleResult] | type[SessionStatus]) -> Observation:
    """Read a tickle or auth-status result; a result that does not fit is a gateway error."""
    try:
        parsed = model.model_validate(result)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return Observation("gateway_error", detail=f"bad answer from the gateway: {where}: {first['msg']}"[:200])
    if isinstance(parsed, TickleResult):
        if parsed.no_session:
            return Observation("no_session", detail="tickle: no session")
        sso = parsed.sso_expires_ms if parsed.sso_expires_ms and parsed.sso_expires_ms > 0 else None
        return Observation("auth", parsed.authenticated, parsed.connected, parsed.competing, sso)
    return Observation("auth", parsed.authenticated, parsed.connected, parsed.competing)


class SessionGateway:
    """The session operations of the bridge for one connection, each answer read as an observation."""

    def __init__(self, bridge: BridgeClient) -> None:
        self.bridge = bridge

    async def call(self, operation: str, request: BridgeRequest | None = None) -> BridgeReply:
        """One request to the bridge; silence and transport errors become a reply with a code."""
        try:
            return BridgeReply(result=await self.bridge.raw(operation, request or Empty()))
        except BridgeError as exc:
            if not exc.answered:  # nobody answered: the bridge is not there
                return BridgeReply(code=ErrorCode.GATEWAY_UNAVAILABLE,
                                   message=f"gateway-bridge not answering ({exc.message})")
            return BridgeReply(code=exc.code, message=exc.message, details=exc.details)
        except Exception as exc:  # NATS down or closed: the bridge cannot be asked
            name = type(exc).__name__
            return BridgeReply(code=ErrorCode.GATEWAY_UNAVAILABLE, message=f"gateway-bridge not answering ({name})")

    async def _observe(self, operation: str, model: type[TickleResult] | type[SessionStatus],
                       request: BridgeRequest | None = None) -> Observation | None:
        reply = await self.call(operation, request)
        if not reply.ok:
            return error_observation(reply)
        return auth_observation(reply.result, model)

    async def tickle(self) -> Observation | None:
        """`session.tickle`: keep the session alive and read its flags."""
        return await self._observe("session.tickle", TickleResult)

    async def status(self) -> Observation | None:
        """`session.status`: the gateway's auth status."""
        return await self._observe("session.status", SessionStatus)

    async def init(self, compete: bool) -> Observation | None:
        """`session.init` (ssodh/init), optionally kicking other sessions of the username."""
        return await self._observe("session.init", SessionStatus, SessionInitRequest(compete=compete))

    async def reauthenticate(self) -> Observation | None:
        """`session.reauthenticate`; its answer says nothing of the result, so only errors are returned."""
        reply = await self.call("session.reauthenticate")
        return None if reply.ok else error_observation(reply)

    async def login_time(self) -> datetime | None:
        """When the user logged in, as `session.validate` (sso/validate's AUTH_TIME) tells; None when unknown."""
        reply = await self.call("session.validate")
        if not reply.ok:
            return None
        try:
            return ValidateResult.model_validate(reply.result).login_at
        except ValidationError:
            return None

    async def logout(self) -> BridgeReply:
        """`session.logout`."""
        return await self.call("session.logout")
