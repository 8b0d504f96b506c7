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


def unwrap_reply(subject: str, raw: bytes) -> Any:
    """The `result` of a `{"ok", "result"|"error"}` reply; raises RpcError for an error or garbage."""
    try:
        body = json.loads(raw)
    except (ValueError, TypeError):
        raise RpcError("BAD_REPLY", f"{subject}: reply is not JSON: {raw[:60]!r}") from None
    if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
        raise RpcError("BAD_REPLY", f"{subject}: reply has no ok flag: {str(body)[:60]}")
    if body["ok"]:
        return body.get("result")
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    raise RpcError(str(error.get("code") or "INTERNAL"), str(error.get("message") or ""), error.get("details"))


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
        return unwrap_reply(subject, msg.data)
