"""The correlation id of the message being handled, for the logs, carried on to the next hop.

A FastStream middleware (`BaseMiddleware`, as FastStream's documentation invites): while a message is
handled, `ibkr_common.logs.correlation_id` holds its correlation id, so every log line of the handler
carries it; requests and publishes made meanwhile are sent with the same id (replies keep theirs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.response import PublishType

from ibkr_common.logs import correlation_id


class CorrelationMiddleware(BaseMiddleware):
    """Sets the logging correlation id from each consumed message and stamps it on what is sent meanwhile."""

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        token = correlation_id.set(msg.correlation_id or None)
        try:
            return await call_next(msg)
        finally:
            correlation_id.reset(token)

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        current = correlation_id.get()
        if current and cmd.publish_type is not PublishType.REPLY:
            cmd.correlation_id = current
        return await call_next(cmd)
