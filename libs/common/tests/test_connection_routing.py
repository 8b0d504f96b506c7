"""Handlers over every connection learn each message's connection (ConnectionMiddleware, the status responder)."""

import json

import pytest
from faststream import FastStream, TestApp
from faststream.nats import NatsBroker, NatsRouter

from ibkr_common.clock import SystemClock
from ibkr_common.connections import ConnectionMiddleware, current_connection
from ibkr_common.replies import ErrorCode, ServiceError, ok, reply_middleware
from ibkr_common.service import nats_client_of
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects

pytestmark = pytest.mark.connected


async def test_a_handler_over_every_connection_answers_for_the_connection_it_was_asked_on(
    nats_client, nats_url, run_names
):
    served = {f"{run_names.conn}-x", f"{run_names.conn}-y"}
    every = Subjects.every_connection()
    router = NatsRouter(middlewares=[reply_middleware(), ConnectionMiddleware])

    @router.subscriber(every.orders_check)
    async def check(body: dict) -> dict:
        return ok({"connection": current_connection()})

    async def details_of(conn: str) -> dict:
        if conn not in served:
            raise ServiceError(ErrorCode.NOT_FOUND, f"connection {conn!r} is not registered")
        return {"served": True}

    add_status_responder(router, every, "compliance", SystemClock(), queue="q", details_of=details_of)
    broker = NatsBroker(nats_url)
    broker.include_router(router)

    async def ask(subject: str) -> dict:
        return json.loads((await nats_client.request(subject, b"{}", timeout=5)).data)

    async with TestApp(FastStream(broker)):
        await nats_client_of(broker).flush()  # the server knows the subscriptions before another client asks
        answers = {conn: await ask(Subjects(conn).orders_check) for conn in sorted(served)}
        status = await ask(Subjects(f"{run_names.conn}-y").service_status("compliance"))
        unknown = await ask(Subjects(f"{run_names.conn}-z").service_status("compliance"))
    assert {conn: a["result"]["connection"] for conn, a in answers.items()} == {c: c for c in served}
    assert status["result"]["connection"] == f"{run_names.conn}-y" and status["result"]["details"] == {"served": True}
    assert unknown["ok"] is False and unknown["error"]["code"] == "NOT_FOUND"
    with pytest.raises(ValueError):
        current_connection()  # outside a handler there is no message
