"""Request/reply handlers of the session-keeper: `session.status`, `session.logout`, `session.reauthenticate`.

One subscriber per command serves every connection (`ibkr.*.session.<command>`): the connection is the
subject's `<conn>` token, and one the service does not serve is answered NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsRouter

from ibkr_common.clock import Clock
from ibkr_common.connections import ConnectionDirectory, ConnectionMiddleware, current_connection
from ibkr_common.messages.session import SessionLogoutResult, SessionRequest
from ibkr_common.replies import ok, reply_middleware
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects
from ibkr_session_keeper.keeper import Keeper
from ibkr_session_keeper.keepers import Keepers

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
UNKNOWN = " A connection the service does not serve is answered NOT_FOUND."


def build_router(keepers: Keepers, clock: Clock, directory: ConnectionDirectory) -> NatsRouter:
    """The router of the session subjects of every connection; `status` answers from memory."""
    router = NatsRouter(middlewares=[reply_middleware(), ConnectionMiddleware])

    def keeper_of(request: SessionRequest) -> Keeper:
        conn = current_connection()
        directory.require(conn, request.user_id)
        return keepers.require(conn)

    @router.subscriber(Subjects.every_connection().command("session.status"), queue=QUEUE_GROUP,
                       description=ANSWERS["session_status"] + UNKNOWN)
    async def session_status(request: SessionRequest) -> dict[str, Any]:
        return ok(keeper_of(request).status())

    @router.subscriber(Subjects.every_connection().command("session.logout"), queue=QUEUE_GROUP,
                       description=ANSWERS["session_logout"] + UNKNOWN)
    async def session_logout(request: SessionRequest) -> dict[str, Any]:
        return ok(SessionLogoutResult(logged_out=await keeper_of(request).logout()))

    @router.subscriber(Subjects.every_connection().command("session.reauthenticate"), queue=QUEUE_GROUP,
                       description=ANSWERS["session_reauthenticate"] + UNKNOWN)
    async def session_reauthenticate(request: SessionRequest) -> dict[str, Any]:
        return ok(await keeper_of(request).reauthenticate())

    async def status_details(conn: str) -> dict[str, Any]:
        status = keepers.require(conn).status()
        return {"status": status.status, "authenticated": status.authenticated}

    add_status_responder(router, Subjects.every_connection(), "session-keeper", clock, queue=QUEUE_GROUP,
                         details_of=status_details)
    return router
