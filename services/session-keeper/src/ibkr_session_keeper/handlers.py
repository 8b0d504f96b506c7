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
#: What each subject does and its answer time (the AsyncAPI description of the subject).
ANSWERS = {
    "session_status": "The session as the keeper last saw it, from memory. Answers at once (well within 1 s).",
    "session_logout": (
        "Logs the gateway session out. Answers within 20 s (the bridge's answer, waited "
        "IBKR_SESSION_BRIDGE_TIMEOUT_S, 15 s)."
    ),
    "session_reauthenticate": (
        "Asks the gateway to open the brokerage session again. Answers within 20 s (the bridge's answers, "
        "each waited IBKR_SESSION_BRIDGE_TIMEOUT_S, 15 s)."
    ),
}


def build_router(subjects: Subjects, keeper: Keeper) -> NatsRouter:
    """The router of this connection's session subjects; `status` answers from memory."""
    router = NatsRouter(middlewares=[reply_middleware()])

    @router.subscriber(subjects.session_status, queue=QUEUE_GROUP, description=ANSWERS["session_status"])
    async def session_status(request: SessionRequest) -> dict[str, Any]:
        return ok(keeper.status())

    @router.subscriber(subjects.session_logout, queue=QUEUE_GROUP, description=ANSWERS["session_logout"])
    async def session_logout(request: SessionRequest) -> dict[str, Any]:
        return ok(SessionLogoutResult(logged_out=await keeper.logout()))

    @router.subscriber(subjects.session_reauthenticate, queue=QUEUE_GROUP,
                       description=ANSWERS["session_reauthenticate"])
    async def session_reauthenticate(request: SessionRequest) -> dict[str, Any]:
        return ok(await keeper.reauthenticate())

    async def status_details() -> dict[str, Any]:
        status = keeper.status()
        return {"status": status.status, "authenticated": status.authenticated}

    add_status_responder(router, subjects, "session-keeper", keeper.clock, queue=QUEUE_GROUP, details=status_details)
    return router
