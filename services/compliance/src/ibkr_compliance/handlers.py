"""Request/reply handlers of compliance (thin; the logic is in service.py and admin.py)."""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsRouter

from ibkr_common.messages.orders import CancelRequest, ConfirmRequest, ModifyRequest, OrderRequest
from ibkr_common.replies import ok, reply_middleware
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects
from ibkr_compliance.admin import ComplianceAdmin
from ibkr_compliance.messages import AcknowledgeRequest, HaltRequest, StatusRequest
from ibkr_compliance.service import ComplianceService

QUEUE_GROUP = "compliance"


def build_router(subjects: Subjects, service: ComplianceService, admin: ComplianceAdmin) -> NatsRouter:
    """The router serving this connection's compliance subjects (queue group, so replicas share)."""
    router = NatsRouter(middlewares=[reply_middleware()])

    @router.subscriber(subjects.orders_check, queue=QUEUE_GROUP)
    async def orders_check(request: OrderRequest) -> dict[str, Any]:
        return ok(await service.check(request))

    @router.subscriber(subjects.orders_submit, queue=QUEUE_GROUP)
    async def orders_submit(request: OrderRequest) -> dict[str, Any]:
        return ok(await service.submit(request))

    @router.subscriber(subjects.orders_confirm, queue=QUEUE_GROUP)
    async def orders_confirm(request: ConfirmRequest) -> dict[str, Any]:
        return ok(await service.confirm(request))

    @router.subscriber(subjects.orders_cancel, queue=QUEUE_GROUP)
    async def orders_cancel(request: CancelRequest) -> dict[str, Any]:
        return ok(await service.cancel(request))

    @router.subscriber(subjects.orders_modify, queue=QUEUE_GROUP)
    async def orders_modify(request: ModifyRequest) -> dict[str, Any]:
        return ok(await service.modify(request))

    @router.subscriber(subjects.compliance_acknowledge, queue=QUEUE_GROUP)
    async def compliance_acknowledge(request: AcknowledgeRequest) -> dict[str, Any]:
        return ok(await admin.acknowledge(request))

    @router.subscriber(subjects.compliance_status, queue=QUEUE_GROUP)
    async def compliance_status(request: StatusRequest) -> dict[str, Any]:
        return ok(await admin.status(request))

    @router.subscriber(subjects.trading_halt, queue=QUEUE_GROUP)
    async def trading_halt(request: HaltRequest) -> dict[str, Any]:
        return ok(await admin.set_halted(True, request))

    @router.subscriber(subjects.trading_resume, queue=QUEUE_GROUP)
    async def trading_resume(request: HaltRequest) -> dict[str, Any]:
        return ok(await admin.set_halted(False, request))

    async def status_details() -> dict[str, Any]:
        return {"halted": await admin.controls.halted()}

    add_status_responder(router, subjects, "compliance", admin.clock, queue=QUEUE_GROUP, details=status_details)
    return router
