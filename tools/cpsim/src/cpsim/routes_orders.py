"""Order endpoints: place, reply, suppress, live orders, status, cancel, modify, what-if, trades."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from cpsim import order_ops, render_orders, trading
from cpsim.orders import FILTERS
from cpsim.state import NY, SimState
from cpsim.web import (
    ApiError,
    as_dict,
    bad_request,
    int_param,
    iserver_account,
    json_body,
    need_accounts,
    need_brokerage,
    ok,
    order_error,
)

LIVE_ORDERS_MAX = 1000  # the gateway lists at most this many (the newest, here)


def _orders_of(body: Any) -> list[Any]:
    orders: Any = None
    if isinstance(body, list):
        orders = body
    elif isinstance(body, dict):
        orders = body.get("orders")
    if not isinstance(orders, list) or not orders:
        raise bad_request("orders must be a non-empty array")
    return orders


def routes(state: SimState) -> list[Route]:
    """The order routes, bound to `state`."""

    async def place(request: Request) -> Response:
        need_accounts(state)
        acct = iserver_account(state, request.path_params["account_id"])
        orders = _orders_of(await json_body(request))
        status, body = order_error(*trading.place(state, acct.account_id, orders))
        return ok(body, status)

    async def whatif(request: Request) -> Response:
        need_accounts(state)
        acct = iserver_account(state, request.path_params["account_id"])
        orders = _orders_of(await json_body(request))
        state.book.invalidate_pending()
        status, body = order_error(*order_ops.whatif(state, acct.account_id, orders))
        return ok(body, status)

    async def reply(request: Request) -> Response:
        need_brokerage(state)
        body = as_dict(await json_body(request))
        status, out = order_error(*trading.reply(state, request.path_params["reply_id"], body.get("confirmed")))
        return ok(out, status)

    async def suppress(request: Request) -> Response:
        need_brokerage(state)
        body = as_dict(await json_body(request))
        ids = body.get("messageIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise bad_request("messageIds must be an array of strings")
        if len(ids) > 51:
            raise ApiError(500, {"error": "System error: too many message ids"})
        state.session.suppressed.update(ids)
        return ok({"status": "submitted"})

    async def suppress_reset(request: Request) -> Response:
        need_brokerage(state)
        state.session.suppressed.clear()
        return ok({"status": "submitted"})

    async def live_orders(request: Request) -> Response:
        need_accounts(state)
        qp = request.query_params
        if qp.get("force", "").lower() == "true":
            return ok({"orders": [], "snapshot": False})
        wanted: set[str] = set()
        for name in filter(None, (x.strip() for x in qp.get("filters", "").split(","))):
            if name not in FILTERS:
                raise ApiError(500, {"error": f"invalid filter '{name}'"})  # REFERENCE.md 6: HTTP 500
            if FILTERS[name]:
                wanted.add(FILTERS[name])
        account = qp.get("accountId") or None
        now = state.clock.now()
        rows = []
        for o in state.book.visible(state.session.brokerage_at):
            if (wanted and o.status not in wanted) or (account and o.account != account):
                continue
            rows.append(render_orders.live_order(o, state.market, now))
        return ok({"orders": rows[:LIVE_ORDERS_MAX], "snapshot": True})  # REFERENCE.md 7.4: max 1000, newest first

    async def order_status(request: Request) -> Response:
        need_brokerage(state)
        oid = int_param(request.path_params["order_id"], "orderId")
        o = state.book.orders.get(oid)
        since = state.session.brokerage_at
        if o is None or (not o.working and since is not None and (o.updated_at or o.created_at) < since):
            raise ApiError(503, {"error": "Service Unavailable", "statusCode": 503})
        if o.account != state.selected:  # REFERENCE.md 4.10: switch to the order's account first
            raise ApiError(503, {"error": "Service Unavailable", "statusCode": 503})
        return ok(render_orders.order_status(o, state.market))

    async def cancel(request: Request) -> Response:
        need_accounts(state)
        acct = iserver_account(state, request.path_params["account_id"])
        oid = int_param(request.path_params["order_id"], "orderId")
        status, body = order_ops.cancel(state, acct.account_id, oid)
        return ok(body, status)

    async def modify(request: Request) -> Response:
        need_accounts(state)
        acct = iserver_account(state, request.path_params["account_id"])
        oid = int_param(request.path_params["order_id"], "orderId")
        status, body = order_error(*order_ops.modify(state, acct.account_id, oid, await json_body(request)))
        return ok(body, status)

    async def trades(request: Request) -> Response:
        need_brokerage(state)
        qp = request.query_params
        days = int_param(qp.get("days", "1"), "days")
        days = min(max(days, 1), 7)
        acct = state.accounts.get(qp.get("accountId") or state.selected)
        if acct is None:
            raise bad_request(f"accountId is not valid: {qp.get('accountId')}")
        start = state.today() - timedelta(days=days - 1)
        rows = [
            render_orders.trade(ex, acct.account_id)
            for ex in acct.executions
            if ex["time"].astimezone(NY).date() >= start
        ]
        return ok(sorted(rows, key=lambda r: r["trade_time_r"], reverse=True))

    async def notification(request: Request) -> Response:
        """REFERENCE.md 7.4: the answer to a server prompt is a 200 with the plain text `Success`."""
        need_brokerage(state)
        as_dict(await json_body(request))
        return PlainTextResponse("Success")

    return [
        Route("/v1/api/iserver/account/orders", live_orders, methods=["GET"]),
        Route("/v1/api/iserver/account/trades", trades, methods=["GET"]),
        Route("/v1/api/iserver/account/order/status/{order_id}", order_status, methods=["GET"]),
        Route("/v1/api/iserver/account/{account_id}/orders", place, methods=["POST"]),
        Route("/v1/api/iserver/account/{account_id}/orders/whatif", whatif, methods=["POST"]),
        Route("/v1/api/iserver/account/{account_id}/order/{order_id}", cancel, methods=["DELETE"]),
        Route("/v1/api/iserver/account/{account_id}/order/{order_id}", modify, methods=["POST"]),
        Route("/v1/api/iserver/reply/{reply_id}", reply, methods=["POST"]),
        Route("/v1/api/iserver/questions/suppress", suppress, methods=["POST"]),
        Route("/v1/api/iserver/questions/suppress/reset", suppress_reset, methods=["POST"]),
        Route("/v1/api/iserver/notification", notification, methods=["POST"]),
    ]
