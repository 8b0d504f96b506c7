"""Request/reply handlers of the sync-worker (thin; reads come from the database), for every connection it serves."""

from __future__ import annotations

import json
import uuid
from typing import Any

from faststream.nats import NatsRouter

from ibkr_common.clock import Clock
from ibkr_common.connections import ConnectionDirectory, ConnectionMiddleware, current_connection
from ibkr_common.messages.sync import (
    AccountGetRequest,
    OrdersGetRequest,
    OrdersResult,
    PositionsCloseRequest,
    PositionsExerciseRequest,
    PositionsGetRequest,
    PositionsResult,
    SyncRequest,
    SyncTriggerRequest,
    SyncTriggerResult,
    fill_page,
)
from ibkr_common.replies import ErrorCode, ServiceError, ok, reply_middleware
from ibkr_common.rpc import Rpc, RpcUnavailable
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects
from ibkr_sync_worker.schedules import ConnectionSync, Schedules
from ibkr_sync_worker.settings import SyncSettings
from ibkr_sync_worker.syncer import SyncAborted

QUEUE_GROUP = "sync-worker"
#: What each subject does and its answer time (the AsyncAPI description of the subject).
ANSWERS = {
    "positions_get": "One page of the synced positions, from the database (follow `next_cursor`). Answers within 5 s.",
    "orders_get": "One page of the synced orders, newest first, from the database (follow `next_cursor`). "
                  "Answers within 5 s.",
    "account_get": "The synced account summary, from the database. Answers within 5 s.",
    "sync_trigger": (
        "Syncs the account now and answers when done. Answers within 60 s with the default settings (the gateway "
        "paces live orders, trades and portfolio reads at one call per 5 s; each bridge read waits at most "
        "IBKR_SYNC_BRIDGE_TIMEOUT_S), else a retryable error."
    ),
    "positions_close": (
        "Closes a position with an order sent through compliance's orders.submit. Answers within 35 s "
        "(orders.submit's 30 s, waited IBKR_SYNC_SUBMIT_TIMEOUT_S, plus reading the position)."
    ),
    "positions_exercise": "Always NOT_SUPPORTED (Client Portal cannot exercise). Answers at once.",
}
EXERCISE_EXPLANATION = (
    "The Client Portal Web API documents no call to exercise an option (its REST reference has none; "
    "the websocket's `exercise` topic is an undocumented dialogue, not an API). Exercise in Client Portal "
    "or TWS, or close the position with positions.close."
)
ABORT_CODES = {c.value for c in ErrorCode}
UNKNOWN = (" A connection the service does not serve is answered NOT_FOUND; a `user_id` that does not own the "
           "connection, FORBIDDEN.")


class Handlers:
    """What the handlers need: each connection's schedule (scheduler, syncer, store), who owns which connection,
    settings, requests to compliance, a clock. Every method takes the connection's schedule first."""

    def __init__(self, settings: SyncSettings, schedules: Schedules, directory: ConnectionDirectory, rpc: Rpc,
                 clock: Clock) -> None:
        self.settings = settings
        self.schedules = schedules
        self.directory = directory
        self.rpc = rpc
        self.clock = clock

    def serving(self, conn: str, user_id: str | None) -> ConnectionSync:
        """The schedule of the connection `conn`, for `user_id` when the request names one: NOT_FOUND when
        the connection is not served, FORBIDDEN when the user does not own it (`ConnectionDirectory.require`)."""
        self.directory.require(conn, user_id)
        return self.schedules.require(conn)

    async def positions_get(self, cs: ConnectionSync, request: PositionsGetRequest) -> PositionsResult:
        synced_at = await cs.syncer.synced_at(request.account_id, "positions")
        after = request.after()
        found = await cs.store.positions(request.account_id, (str(after[0]), int(after[1])) if after else None,
                                         request.size() + 1)
        if synced_at is None and not found and after is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no positions synced for account {request.account_id} yet")
        positions, next_cursor = fill_page([((p.symbol or "", p.conid), p) for p in found], request.size(),
                                           request.cursor_kind)
        return PositionsResult(account_id=request.account_id, positions=positions, synced_at=synced_at,
                               next_cursor=next_cursor)

    async def orders_get(self, cs: ConnectionSync, request: OrdersGetRequest) -> OrdersResult:
        after = request.after()
        found = await cs.store.orders(request.account_id, request.statuses(), request.size() + 1,
                                      before=int(after[0]) if after else None)
        orders, next_cursor = fill_page([((key,), view) for key, view in found], request.size(), request.cursor_kind)
        synced_at = await cs.syncer.synced_at(request.account_id, "orders")
        return OrdersResult(account_id=request.account_id, orders=orders, synced_at=synced_at, next_cursor=next_cursor)

    async def account_get(self, cs: ConnectionSync, request: AccountGetRequest) -> dict[str, Any]:
        view = await cs.store.account(request.account_id)
        if view is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no account summary synced for {request.account_id} yet")
        synced_at = await cs.syncer.synced_at(request.account_id, "account")
        if synced_at is not None:
            view = view.model_copy(update={"synced_at": synced_at})
        return view.model_dump(mode="json")

    async def sync_trigger(self, cs: ConnectionSync, request: SyncTriggerRequest) -> SyncTriggerResult:
        try:
            result = await cs.scheduler.request(request.account_id)
        except SyncAborted as exc:
            code = exc.code if exc.code in ABORT_CODES else ErrorCode.GATEWAY_UNAVAILABLE
            raise ServiceError(ErrorCode(code), exc.message) from None
        return SyncTriggerResult(
            synced_at=result.synced_at, positions=result.positions, orders=result.orders, accounts=result.accounts,
            events=result.events, rows_written=result.rows_written, problems=result.problems,
        )

    async def positions_close(self, cs: ConnectionSync, request: PositionsCloseRequest) -> dict[str, Any]:
        position = await cs.store.position(request.account_id, request.conid)
        synced_at = await cs.syncer.synced_at(request.account_id, "positions")
        max_age_s = 2 * self.settings.sync_interval_ms / 1000
        stale = synced_at is None or (self.clock.now() - synced_at).total_seconds() > max_age_s
        if stale and not cs.syncer.paused:
            try:
                await cs.scheduler.request(request.account_id)
            except SyncAborted:
                pass  # close on what is stored; compliance checks again
            position = await cs.store.position(request.account_id, request.conid)
        if position is None or position.quantity == 0:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no position in conid {request.conid} on {request.account_id}")
        held = abs(position.quantity)
        quantity = request.quantity if request.quantity is not None else held
        if quantity > held:
            raise ServiceError(ErrorCode.VALIDATION_ERROR, f"quantity: must be at most the position's {held}",
                               [{"field": "quantity", "message": f"must be at most {held}"}])
        order: dict[str, Any] = {
            "client_order_id": request.client_order_id or f"close-{uuid.uuid4().hex[:20]}",
            "user_id": request.user_id,
            "account_id": request.account_id,
            "environment": cs.connection.environment,
            "instrument": {"conid": request.conid},
            "side": "SELL" if position.quantity > 0 else "BUY",
            "quantity": format(quantity.normalize(), "f"),
            "order_type": request.order_type,
            "tif": request.tif,
            "position_effect": "close",
        }
        if request.limit_price is not None:
            order["limit_price"] = format(request.limit_price, "f")
        if request.stop_price is not None:
            order["stop_price"] = format(request.stop_price, "f")
        try:
            raw = await self.rpc.request(cs.subjects.orders_submit, json.dumps(order).encode(),
                                         self.settings.submit_timeout_s)
        except RpcUnavailable as exc:
            if not exc.sent:
                raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE,
                                   "nobody serves orders.submit (is compliance running?)",
                                   {"order_request": order}) from None
            raise ServiceError(ErrorCode.TIMEOUT, f"orders.submit did not answer in {self.settings.submit_timeout_s} s",
                               {"order_request": order}) from None
        try:
            reply = json.loads(raw)
        except ValueError:
            raise ServiceError(ErrorCode.INTERNAL, "orders.submit answered with invalid JSON") from None
        if isinstance(reply, dict) and reply.get("ok") and isinstance(reply.get("result"), dict):
            reply["result"] = {**reply["result"], "order_request": order}
        return reply if isinstance(reply, dict) else ok({"reply": reply, "order_request": order})

    async def status_details(self, conn: str) -> dict[str, Any]:
        """For `status.sync-worker` of a connection: the accounts synced, the newest complete read, and whether
        syncs run (NOT_FOUND for a connection not served)."""
        cs = self.schedules.require(conn)
        accounts = await cs.store.known_accounts()
        marks = [await cs.syncer.synced_at(account, "positions") for account in accounts]
        return {"accounts": accounts, "last_sync_at": max((m for m in marks if m), default=None),
                "paused": cs.scheduler.paused, "last_failed": cs.scheduler.last_failed}

    async def positions_exercise(self, cs: ConnectionSync, request: PositionsExerciseRequest) -> dict[str, Any]:
        raise ServiceError(ErrorCode.NOT_SUPPORTED, EXERCISE_EXPLANATION,
                           {"account_id": request.account_id, "conid": request.conid, "alternative": "positions.close"})


def build_router(handlers: Handlers) -> NatsRouter:
    """The router serving the sync-worker subjects of every connection (`ibkr.*.<command>`, queue group, so
    replicas share); each handler finds its connection in the subject it was called on."""
    router = NatsRouter(middlewares=[reply_middleware(), ConnectionMiddleware])

    def on(request: SyncRequest) -> ConnectionSync:
        return handlers.serving(current_connection(), request.user_id)

    @router.subscriber(Subjects.every_connection().command("positions.get"), queue=QUEUE_GROUP, max_workers=4,
                       description=ANSWERS["positions_get"] + UNKNOWN)
    async def positions_get(request: PositionsGetRequest) -> dict[str, Any]:
        return ok(await handlers.positions_get(on(request), request))

    @router.subscriber(Subjects.every_connection().command("orders.get"), queue=QUEUE_GROUP, max_workers=4,
                       description=ANSWERS["orders_get"] + UNKNOWN)
    async def orders_get(request: OrdersGetRequest) -> dict[str, Any]:
        return ok(await handlers.orders_get(on(request), request))

    @router.subscriber(Subjects.every_connection().command("account.get"), queue=QUEUE_GROUP, max_workers=4,
                       description=ANSWERS["account_get"] + UNKNOWN)
    async def account_get(request: AccountGetRequest) -> dict[str, Any]:
        return ok(await handlers.account_get(on(request), request))

    @router.subscriber(Subjects.every_connection().command("sync.trigger"), queue=QUEUE_GROUP, max_workers=16,
                       description=ANSWERS["sync_trigger"] + UNKNOWN)
    async def sync_trigger(request: SyncTriggerRequest) -> dict[str, Any]:
        return ok(await handlers.sync_trigger(on(request), request))

    @router.subscriber(Subjects.every_connection().command("positions.close"), queue=QUEUE_GROUP, max_workers=8,
                       description=ANSWERS["positions_close"] + UNKNOWN)
    async def positions_close(request: PositionsCloseRequest) -> dict[str, Any]:
        return await handlers.positions_close(on(request), request)

    @router.subscriber(Subjects.every_connection().command("positions.exercise"), queue=QUEUE_GROUP,
                       description=ANSWERS["positions_exercise"] + UNKNOWN)
    async def positions_exercise(request: PositionsExerciseRequest) -> dict[str, Any]:
        return await handlers.positions_exercise(on(request), request)

    add_status_responder(router, Subjects.every_connection(), "sync-worker", handlers.clock, queue=QUEUE_GROUP,
                                     details_of=handlers.status_details)
    return router
