"""Request/reply handlers of audit: `audit.query` and `audit.verify` (thin; the logic is in store.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from faststream.nats import NatsRouter

from ibkr_audit.store import AuditStore
from ibkr_common.messages.audit import AuditQueryRequest, AuditVerifyRequest, AuditVerifyResult
from ibkr_common.replies import ok, reply_middleware
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects

if TYPE_CHECKING:
    from ibkr_audit.anchor import StreamAnchor

QUEUE_GROUP = "audit"
#: What each subject does and its answer time (the AsyncAPI description of the subject).
ANSWERS = {
    "audit_query": "A page of the audit log, newest first. Answers within 5 s (one indexed read of one page).",
    "audit_verify": (
        "Walks the hash chain from `from_seq` and says whether it holds. No fixed answer time: it answers when "
        "the walk is done, which grows with the events walked; give `from_seq` to bound it, and allow 60 s."
    ),
}


def build_router(
    subjects: Subjects, store: AuditStore, redacted: Callable[[], int],
    anchor: Callable[[], Awaitable[StreamAnchor | None]],
    verified: Callable[[AuditVerifyResult], None] | None = None,
) -> NatsRouter:
    """The router serving this connection's audit subjects (queue group `audit`, so replicas share).

    `anchor` reads the consumer's position in the stream (None when it cannot be had) before each walk;
    `verified` is told each verify's result (metrics).
    """
    router = NatsRouter(middlewares=[reply_middleware()])

    @router.subscriber(subjects.audit_query, queue=QUEUE_GROUP, description=ANSWERS["audit_query"])
    async def audit_query(request: AuditQueryRequest) -> dict[str, Any]:
        return ok(await store.query(request))

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
