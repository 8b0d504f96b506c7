"""Request/reply handlers of compliance (thin; the logic is in service.py and admin.py)."""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsRouter

from ibkr_common.connections import ConnectionMiddleware
from ibkr_common.messages.orders import CancelRequest, ConfirmRequest, ModifyRequest, OrderRequest
from ibkr_common.replies import ok, reply_middleware
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects
from ibkr_compliance.lanes import Lanes
from ibkr_compliance.messages import AcknowledgeRequest, HaltRequest, StatusRequest

QUEUE_GROUP = "compliance"
#: Orders handled at once: a submit waits on the bridge (one order conversation at the gateway at a time),
#: and one slow or lost send must not hold the others' answers back. Decisions see each other's orders
#: (reservations.py); the bridge's order lock keeps the gateway's one-at-a-time rule.
ORDER_WORKERS = 32
#: What each subject does and its answer time (the AsyncAPI description of the subject).
ANSWERS = {
    "orders_check": (
        'Decides an order without sending it (the Decision, whatever it is). Answers within 10 s (each piece '
        'of state waits IBKR_COMPLIANCE_STATE_TIMEOUT_MS, 2 s, side by side; an instrument by symbol up to 5 '
        's); a decision without the state it needs is a retryable STATE_UNAVAILABLE.'
    ),
    "orders_submit": (
        'Decides an order and sends it once. Answers within 30 s, even with the gateway-bridge gone: '
        'IBKR_COMPLIANCE_SUBMIT_BUDGET_S (25 s) covers deciding, recording and the send; a bridge that is not '
        'there is a retryable GATEWAY_UNAVAILABLE at once, a send without an answer in time a retryable '
        'TIMEOUT (status unknown) resolved by its cOID within 60 s. Retry with the same client_order_id: '
        'never sent twice.'
    ),
    "orders_confirm": (
        "Answers IBKR's question about an order. Answers within 25 s (IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S, 20 s, "
        'per answer sent), plus as much for each further question the policy answers by itself.'
    ),
    "orders_cancel": (
        'Cancels a working order. Answers within 25 s (the bridge answers within its order budget, '
        'IBKR_BRIDGE_ORDER_BUDGET_S, 18 s; compliance waits IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S, 20 s).'
    ),
    "orders_modify": (
        'Changes a working order after checking it again. Answers within 30 s (a decision, up to 10 s, then '
        'the bridge, up to IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S, 20 s).'
    ),
    "compliance_acknowledge": (
        "Records a user's acknowledgment of disclosures. Answers within 5 s (one database transaction)."
    ),
    "compliance_status": (
        "A user's regime, day trades, options level, missing acknowledgments, the halt switch with its reason "
        "and the account's orders waiting for an answer to IBKR's question. Answers within 5 s (the "
        'synced account, waited IBKR_COMPLIANCE_STATE_TIMEOUT_MS, 2 s, and the database).'
    ),
    "trading_halt": (
        'Halts opening orders on the connection. Answers within 5 s (one database transaction).'
    ),
    "trading_resume": (
        'Resumes trading on the connection. Answers within 5 s (one database transaction).'
    ),
}


def build_router(lanes: Lanes) -> NatsRouter:
    """The router serving the compliance subjects of every connection (`ibkr.*.orders.submit`, ...; queue group,
    so replicas share). Each request goes to the lane of the connection it came on, once `Lanes.route` checked
    that the connection is served and, when the request names a `user_id`, that the user owns it."""
    router = NatsRouter(middlewares=[reply_middleware(), ConnectionMiddleware])
    subjects = Subjects.every_connection()

    @router.subscriber(subjects.orders_check, queue=QUEUE_GROUP, max_workers=ORDER_WORKERS,
                       description=ANSWERS["orders_check"])
    async def orders_check(request: OrderRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).service.check(request))

    @router.subscriber(subjects.orders_submit, queue=QUEUE_GROUP, max_workers=ORDER_WORKERS,
                       description=ANSWERS["orders_submit"])
    async def orders_submit(request: OrderRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).service.submit(request))

    @router.subscriber(subjects.orders_confirm, queue=QUEUE_GROUP, max_workers=8,
                       description=ANSWERS["orders_confirm"])
    async def orders_confirm(request: ConfirmRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).service.confirm(request))

    @router.subscriber(subjects.orders_cancel, queue=QUEUE_GROUP, max_workers=8,
                       description=ANSWERS["orders_cancel"])
    async def orders_cancel(request: CancelRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).service.cancel(request))

    @router.subscriber(subjects.orders_modify, queue=QUEUE_GROUP, max_workers=8,
                       description=ANSWERS["orders_modify"])
    async def orders_modify(request: ModifyRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).service.modify(request))

    @router.subscriber(subjects.compliance_acknowledge, queue=QUEUE_GROUP,
                       description=ANSWERS["compliance_acknowledge"])
    async def compliance_acknowledge(request: AcknowledgeRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).admin.acknowledge(request))

    @router.subscriber(subjects.compliance_status, queue=QUEUE_GROUP, description=ANSWERS["compliance_status"])
    async def compliance_status(request: StatusRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).admin.status(request))

    @router.subscriber(subjects.trading_halt, queue=QUEUE_GROUP, description=ANSWERS["trading_halt"])
    async def trading_halt(request: HaltRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).admin.set_halted(True, request))

    @router.subscriber(subjects.trading_resume, queue=QUEUE_GROUP, description=ANSWERS["trading_resume"])
    async def trading_resume(request: HaltRequest) -> dict[str, Any]:
        return ok(await lanes.route(request.user_id).admin.set_halted(False, request))

    async def status_details(conn: str) -> dict[str, Any]:
        return {"halted": await lanes.lane_of(conn).controls.halted()}

    add_status_responder(router, subjects, "compliance", lanes.shared.clock, queue=QUEUE_GROUP,
                         details_of=status_details)
    return router
