"""Request/reply to another service through the broker's own request API, unwrapping CONTRACT's replies.

Every call between services goes through FastStream's `NatsBroker.request`, so that whatever
middleware the broker carries (metrics, traces) sees each hop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

import nats.errors

from ibkr_common.envelope import jsonable


class RpcError(Exception):
    """The other service answered `ok: false`."""

    def __init__(self, code: str, message: str, details: Any = None, retryable: bool | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable


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
    retryable = error.get("retryable")
    raise RpcError(str(error.get("code") or "INTERNAL"), str(error.get("message") or ""), error.get("details"),
                   retryable if isinstance(retryable, bool) else None)


class Reply(Protocol):
    """What is read of a reply: its raw body (FastStream's `NatsMessage.body`)."""

    @property
    def body(self) -> bytes: ...


class RequestBroker(Protocol):
    """What is needed of a broker: FastStream's `NatsBroker.request`."""

    async def request(self, message: Any, subject: str, *, timeout: float = 0.5) -> Any: ...


class Rpc:
    """Sends JSON requests through the broker and unwraps `{"ok", "result"|"error"}`."""

    def __init__(self, broker: RequestBroker) -> None:
        self.broker = broker

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """The raw reply body; raises RpcUnavailable when nobody answers in time."""
        try:
            reply: Reply = await self.broker.request(data, subject, timeout=timeout)
        except nats.errors.NoRespondersError:
            raise RpcUnavailable(subject, sent=False) from None
        except nats.errors.TimeoutError:
            raise RpcUnavailable(subject, sent=True) from None
        return reply.body

    async def call(self, subject: str, payload: dict[str, Any], timeout: float) -> Any:
        """The `result` of the reply; raises RpcError or RpcUnavailable."""
        raw = await self.request(subject, json.dumps(jsonable(payload)).encode(), timeout)
        return unwrap_reply(subject, raw)

    async def pages(self, subject: str, payload: dict[str, Any], timeout: float) -> AsyncIterator[Any]:
        """The `result` of every page of a paged command (`cursor` in, `next_cursor` out; CONTRACT.md
        "Paging"), first to last, each asked with `timeout`; raises as `call` does."""
        cursor: str | None = None
        while True:
            result = await self.call(subject, {**payload, "cursor": cursor} if cursor else payload, timeout)
            yield result
            cursor = result.get("next_cursor") if isinstance(result, dict) else None
            if not cursor:
                return
