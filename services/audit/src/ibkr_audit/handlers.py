"""Request/reply handlers of audit: `audit.query` and `audit.verify` (thin; the logic is in store.py).

`audit.query` is served on every connection (`ibkr.*.audit.query`) and answers the events of the connection it
was asked on, for its owner (`scoped_query`); `audit.verify` walks the whole log and stays an operator's
command on the bootstrap connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from faststream.nats import NatsRouter

from ibkr_audit.store import AuditStore
from ibkr_common.connections import ConnectionDirectory, ConnectionMiddleware, current_connection
from ibkr_common.messages.audit import AuditQueryRequest, AuditVerifyRequest, AuditVerifyResult
from ibkr_common.replies import ErrorCode, ServiceError, ok, reply_middleware
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects

if TYPE_CHECKING:
    from ibkr_audit.anchor import StreamAnchor

QUEUE_GROUP = "audit"
#: What each subject does and its answer time (the AsyncAPI description of the subject).
ANSWERS = {
    "audit_query": (
        "A page of the audit log, newest first: the events of the connection asked on (NOT_FOUND for one that is "
        "not registered; FORBIDDEN when `user_id` does not own it or `conn` names another connection). Answers "
        "within 5 s (one indexed read of one page)."
    ),
    "audit_verify": (
        "Walks the hash chain from `from_seq` and says whether it holds. No fixed answer time: it answers when "
        "the walk is done, which grows with the events walked; give `from_seq` to bound it, and allow 60 s."
    ),
}


def scoped_query(directory: ConnectionDirectory, conn: str, request: AuditQueryRequest) -> AuditQueryRequest:
    """The query as it may run for a request on `ibkr.<conn>.audit.query`: narrowed to `conn`'s events.

    `directory.require(conn, user_id)` decides NOT_FOUND (not registered) and FORBIDDEN (`user_id` is not the
    owner). The one unscoped view left is today's: the bootstrap connection, ownership not enforced, no
    `user_id` (every connection's events; `conn` narrows). Anywhere else, `conn` naming another connection
    is FORBIDDEN (field `conn`)."""
    connection = directory.require(conn, request.user_id)
    if connection.bootstrap and not directory.enforce_ownership and request.user_id is None:
        return request
    if request.conn is not None and request.conn != conn:
        raise ServiceError(ErrorCode.FORBIDDEN, f"audit.query on {conn!r} answers only {conn!r}'s events",
                           [{"field": "conn", "message": "not the connection the query was sent on"}])
    return request.model_copy(update={"conn": conn})


def build_router(
    subjects: Subjects, store: AuditStore, redacted: Callable[[], int],
    anchor: Callable[[], Awaitable[StreamAnchor | None]],
    verified: Callable[[AuditVerifyResult], None] | None = None,
    *, directory: ConnectionDirectory,
) -> NatsRouter:
    """The router of audit's subjects (queue group `audit`, so replicas share): `audit.query` of every
    connection in `directory`, `audit.verify` and the status of the bootstrap connection (`subjects`).

    `anchor` reads the consumer's position in the stream (None when it cannot be had) before each walk;
    `verified` is told each verify's result (metrics).
    """
    router = NatsRouter(middlewares=[reply_middleware(), ConnectionMiddleware])

    @router.subscriber(Subjects.every_connection().command("audit.query"), queue=QUEUE_GROUP,
                       description=ANSWERS["audit_query"])
    async def audit_query(request: AuditQueryRequest) -> dict[str, Any]:
        conn = current_connection()
        return ok(await store.query(scoped_query(directory, conn, request)))

    @router.subscriber(subjects.audit_verify, queue=QUEUE_GROUP, description=ANSWERS["audit_verify"])
    async def audit_verify(request: AuditVerifyRequest) -> dict[str, Any]:
        result = await store.verify(request.from_seq, await anchor())
        if verified is not None:
            verified(result)
        return ok(result.model_copy(update={"secrets_redacted": redacted()}))

    async def status_details() -> dict[str, Any]:
        last_seq, _ = await store.head()
        return {"last_seq": last_seq}

    add_status_responder(router, subjects, "audit", store.clock, queue=QUEUE_GROUP, details=status_details)
    return router
