"""Request/reply handlers of the session-keeper: `session.status`, `session.logout`, `session.reauthenticate`."""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsRouter

from ibkr_common.messages.session import SessionLogoutResult, SessionRequest
from ibkr_common.replies import ok, reply_middleware
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects
from ibkr_session_keeper.keeper import Keeper

QUEUE_GROUP = "session-keeper"


def build_router(subjects: Subjects, keeper: Keeper) -> NatsRouter:
    """The router of this connection's session subjects; `status` answers from memory."""
    router = NatsRouter(middlewares=[reply_middleware()])

    @router.subscriber(subjects.session_status, queue=QUEUE_GROUP)
    async def session_status(request: SessionRequest) -> dict[str, Any]:
        return ok(keeper.status())

    @router.subscriber(subjects.session_logout, queue=QUEUE_GROUP)
    async def session_logout(request: SessionRequest) -> dict[str, Any]:
        return ok(SessionLogoutResult(logged_out=await keeper.logout()))

    @router.subscriber(subjects.session_reauthenticate, queue=QUEUE_GROUP)
    async def session_reauthenticate(request: SessionRequest) -> dict[str, Any]:
        return ok(await keeper.reauthenticate())

    async def status_details() -> dict[str, Any]:
        status = keeper.status()
        return {"status": status.status, "authenticated": status.authenticated}

    add_status_responder(router, subjects, "session-keeper", keeper.clock, queue=QUEUE_GROUP, details=status_details)
    return router
