"""Request/reply over NATS to another service, unwrapping the reply shape of CONTRACT.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import nats.errors
from nats.aio.client import Client

from ibkr_common.envelope import jsonable


class RpcError(Exception):
    """The other service answered `ok: false`."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class RpcUnavailable(Exception):
    """Nobody answered: no responder (`sent` False) or a timeout (`sent` True: it may have acted)."""

    def __init__(self, subject: str, sent: bool) -> None:
        super().__init__(f"{'timeout' if sent else 'no responders'} on {subject}")
        self.subject = subject
        self.sent = sent


class Requester(Protocol):
    """What is needed of a NATS client: request/reply with a timeout."""

    async def request(self, subject: str, payload: bytes = b"", timeout: float = 0.5) -> Any: ...


class Rpc:
    """Sends JSON requests with a plain nats-py client and unwraps `{"ok", "result"|"error"}`."""

    def __init__(self, client: Callable[[], Client | Requester]) -> None:
        self._client = client

    async def call(self, subject: str, payload: dict[str, Any], timeout: float) -> Any:
        """The `result` of the reply; raises RpcError or RpcUnavailable."""
        data = json.dumps(jsonable(payload)).encode()
        try:
            msg = await self._client().request(subject, data, timeout=timeout)
        except nats.errors.NoRespondersError:
            raise RpcUnavailable(subject, sent=False) from None
        except nats.errors.TimeoutError:
            raise RpcUnavailable(subject, sent=True) from None
        try:
            body = json.loads(msg.data)
        except (ValueError, TypeError):
            raise RpcError("INTERNAL", f"{subject}: reply is not JSON") from None
        if not isinstance(body, dict) or "ok" not in body:
            raise RpcError("INTERNAL", f"{subject}: reply without ok")
        if body["ok"] is True:
            return body.get("result")
        error = body.get("error") or {}
        raise RpcError(str(error.get("code", "INTERNAL")), str(error.get("message", "")), error.get("details"))
