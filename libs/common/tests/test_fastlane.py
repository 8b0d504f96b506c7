"""A fast lane answers exactly as a FastStream subscriber with `reply_middleware` does, input by input."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from faststream.nats import NatsBroker, NatsRouter
from pydantic import BaseModel, Field

from ibkr_common.fastlane import FastLane
from ibkr_common.replies import ErrorCode, ServiceError, ok, reply_middleware

pytestmark = pytest.mark.connected


class Ask(BaseModel):
    """A request with the kinds of fields the order subjects have."""

    name: str = Field(min_length=1)
    quantity: Decimal = Field(gt=0)
    side: str = Field(pattern="^(BUY|SELL)$")
    note: str | None = None


class Answer(BaseModel):
    name: str
    total: Decimal


async def serve(request: Ask) -> Answer:
    if request.name == "blocked":
        raise ServiceError(ErrorCode.COMPLIANCE_BLOCKED, "order blocked: nope", {"decision": "block"})
    if request.name == "boom":
        raise RuntimeError("unexpected")
    if request.name == "inner":
        Answer.model_validate({"name": 5})  # a ValidationError from inside the handler
    return Answer(name=request.name, total=request.quantity * 2)


BODIES: list[bytes] = [
    json.dumps({"name": "a", "quantity": "1.5", "side": "BUY"}).encode(),
    json.dumps({"name": "blocked", "quantity": "1", "side": "SELL"}).encode(),
    json.dumps({"name": "boom", "quantity": "1", "side": "SELL"}).encode(),
    json.dumps({"name": "inner", "quantity": "1", "side": "SELL"}).encode(),
    json.dumps({"name": "", "quantity": "-1", "side": "HOLD"}).encode(),
    json.dumps({"quantity": "x"}).encode(),
    b"[1, 2]", b'"text"', b"", b"not json at all", b"\xff\xfe", b"{\"name\": ",
]


async def _request(nc: Any, subject: str, body: bytes, headers: dict[str, str] | None) -> dict[str, Any]:
    msg = await nc.request(subject, body, timeout=5, headers=headers)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


@pytest.mark.parametrize("headers", [None, {"content-type": "application/json"}])
async def test_every_reply_is_the_one_faststream_gives(nats_url: str, headers: dict[str, str] | None) -> None:
    base = f"test.fastlane.{uuid.uuid4().hex[:8]}"
    router = NatsRouter(middlewares=[reply_middleware()])

    @router.subscriber(f"{base}.framework", queue="q")
    async def handler(request: Ask) -> dict[str, Any]:
        return ok(await serve(request))

    broker = NatsBroker(nats_url)
    broker.include_router(router)
    await broker.start()
    nc = broker.config.connection_state.connection
    lane = FastLane(nc, f"{base}.lane", "q", Ask, serve)
    await lane.start()
    try:
        for body in BODIES:
            expected = await _request(nc, f"{base}.framework", body, headers)
            got = await _request(nc, f"{base}.lane", body, headers)
            assert got == expected, body
        replies = [await _request(nc, f"{base}.lane", body, headers) for body in BODIES[:6]]
    finally:
        await lane.stop()
        await broker.stop()
    assert replies[0] == {"ok": True, "result": {"name": "a", "total": "3.0"}}
    assert [r["error"]["code"] for r in replies[1:]] == ["COMPLIANCE_BLOCKED", "INTERNAL", "VALIDATION_ERROR",
                                                         "VALIDATION_ERROR", "VALIDATION_ERROR"]
    assert {d["field"] for d in replies[4]["error"]["details"]} == {"name", "quantity", "side"}


async def test_a_lane_takes_over_its_subject_from_the_framework_subscriber(nats_url: str) -> None:
    subject = f"test.fastlane.{uuid.uuid4().hex[:8]}.submit"
    router = NatsRouter(middlewares=[reply_middleware()])
    seen: list[str] = []

    @router.subscriber(subject, queue="q")
    async def handler(request: Ask) -> dict[str, Any]:
        seen.append("framework")
        return ok(await serve(request))

    async def lane_serve(request: Ask) -> Answer:
        seen.append("lane")
        return await serve(request)

    broker = NatsBroker(nats_url)
    broker.include_router(router)
    await broker.start()
    nc = broker.config.connection_state.connection
    body = json.dumps({"name": "a", "quantity": "1", "side": "BUY"}).encode()
    try:
        await _request(nc, subject, body, None)
        lane = FastLane(nc, subject, "q", Ask, lane_serve)
        assert await lane.take_over(broker.subscribers) == 1
        for _ in range(5):
            assert (await _request(nc, subject, body, None))["ok"] is True
        await lane.stop()
    finally:
        await broker.stop()
    assert seen == ["framework"] + ["lane"] * 5
