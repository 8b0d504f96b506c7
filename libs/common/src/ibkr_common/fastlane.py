"""Hot request/reply subjects served straight from nats-py, with the replies `reply_middleware` gives.

FastStream's consume path (its middlewares, the dependency-injection call model, the response
publisher) costs about 0.4 ms a request on this machine: a tenth of an order's whole trip to the
broker. A lane subscribes in the service's queue group, decodes the body as FastStream does (JSON
when it parses, or when the content type says so), validates it with the same model, awaits the same
service method and answers with the same reply shapes: a schema error naming each field, a body
declared JSON that is not, a ServiceError's code, or INTERNAL for anything else (logged).
`tests/test_fastlane.py` checks the replies against a FastStream subscriber's, input by input.

The FastStream subscriber of the subject stays registered (the AsyncAPI document lists it and it
serves until the lane runs); `FastLane.take_over` stops it once the lane serves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError

from ibkr_common.replies import ServiceError, bad_json_reply, fail, ok, unexpected_reply, validation_reply

log = logging.getLogger("ibkr_common.fastlane")
M = TypeVar("M", bound=BaseModel)
_JSON_TYPES = ("application/json",)


class FastLane(Generic[M]):
    """Serves `subject` (in `queue`) with `handler(model)`, answering like a FastStream handler would."""

    def __init__(self, nc: Client, subject: str, queue: str, model: type[M],
                 handler: Callable[[M], Awaitable[Any]]) -> None:
        self.nc = nc
        self.subject = subject
        self.queue = queue
        self.model = model
        self.handler = handler
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe; requests are answered one at a time, in order, as by a FastStream subscriber."""
        self._sub = await self.nc.subscribe(self.subject, queue=self.queue, cb=self._on_msg)

    async def take_over(self, subscribers: Iterable[Any]) -> int:
        """Start, then stop the FastStream subscribers of the same subject; returns how many were stopped."""
        await self.start()
        stopped = 0
        for subscriber in subscribers:
            if _subject_of(subscriber) == self.subject:
                await subscriber.stop()
                stopped += 1
        return stopped

    async def stop(self) -> None:
        """Unsubscribe (requests in flight are finished by nats-py's callback task)."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()

    async def answer(self, data: bytes, content_type: str | None = None) -> dict[str, Any]:
        """The reply to one request body."""
        body: Any = data
        try:
            body = json.loads(data)
        except json.JSONDecodeError as exc:
            if content_type in _JSON_TYPES:
                return bad_json_reply(exc)
        except UnicodeDecodeError:
            pass
        try:
            request = self.model.model_validate(body)
        except ValidationError as exc:
            return validation_reply(exc)
        try:
            return ok(await self.handler(request))
        except ServiceError as exc:
            return fail(exc.code, exc.message, exc.details)
        except ValidationError as exc:  # as reply_middleware: the first location part is dropped
            return validation_reply(exc, strip_argument=True)
        except Exception as exc:
            return unexpected_reply(exc)

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers or {}
        reply = await self.answer(msg.data, headers.get("content-type"))
        if msg.reply:
            await self.nc.publish(msg.reply, json.dumps(reply).encode(), headers={"content-type": "application/json"})


def _subject_of(subscriber: Any) -> str | None:
    """The subject a FastStream NATS subscriber was declared with (its `subject` is an Address)."""
    template = getattr(getattr(subscriber, "subject", None), "template", None)
    return template if isinstance(template, str) else None
