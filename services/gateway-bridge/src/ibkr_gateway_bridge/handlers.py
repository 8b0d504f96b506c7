"""Thin request/reply handlers: one subscriber per bridge operation, plus the public contract subjects.

Each subscriber serves every connection (`ibkr.*.bridge.<op>`, `ibkr.*.contracts.search`, ...): the
connection is the subject's `<conn>` token, its `BridgeService` comes from `ServedConnections`, and a
connection the bridge does not serve is answered NOT_FOUND (field `connection`). The queue group
stays: replicas of the bridge share the work of every connection.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.nats import NatsRouter
from pydantic import BaseModel

from ibkr_common.connections import ConnectionMiddleware, current_connection
from ibkr_common.messages import bridge as m
from ibkr_common.messages import contracts as c
from ibkr_common.replies import ErrorCode, ServiceError, reply_middleware
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects
from ibkr_gateway_bridge.connections import ServedConnections
from ibkr_gateway_bridge.service import BridgeService, priority_of
from ibkr_gateway_bridge.settings import BridgeSettings

QUEUE = "gateway-bridge"
#: Operations that must not be cut short here: they resolve lost answers themselves (and may wait for
#: the 1-per-5-s live-orders and trades endpoints), each within its own overall limit, the order
#: budget (IBKR_BRIDGE_ORDER_BUDGET_S, see budget.py), and answer `unknown` with evidence when it ends.
NO_DEADLINE = frozenset({"orders.place", "orders.reply", "orders.cancel", "orders.modify", "orders.lookup"})
SLOW = frozenset({"orders.live", "trades.list"})
#: Requests handled at once per operation, over every connection; each gateway's limiter, not the
#: handler, paces it (a request beyond the limiter's queue time answers RATE_LIMITED).
MAX_WORKERS = 64
#: NATS' default max_payload (1 MiB) less room for headers; deploy/nats.conf keeps the default.
MAX_REPLY_BYTES = 1024 * 1024 - 4096
UNKNOWN = " A connection the bridge does not serve is answered NOT_FOUND."

Call = Callable[[BridgeService, Any, str], Awaitable[BaseModel]]


def _operations() -> dict[str, tuple[type[BaseModel], Call]]:
    """Each operation: its request model and what it calls on the connection's service (request, priority)."""
    return {
        "session.status": (m.Empty, lambda s, r, p: s.session_status(p)),
        "session.tickle": (m.Empty, lambda s, r, p: s.tickle(p)),
        "session.validate": (m.Empty, lambda s, r, p: s.validate(p)),
        "session.init": (m.SessionInitRequest, lambda s, r, p: s.init(r)),
        "session.reauthenticate": (m.Empty, lambda s, r, p: s.reauthenticate(p)),
        "session.logout": (m.Empty, lambda s, r, p: s.logout(p)),
        "accounts.list": (m.Empty, lambda s, r, p: s.accounts(p)),
        "accounts.portfolio": (m.Empty, lambda s, r, p: s.portfolio_accounts(p)),
        "accounts.summary": (m.AccountRequest, lambda s, r, p: s.summary(r, p)),
        "accounts.ledger": (m.AccountRequest, lambda s, r, p: s.ledger(r, p)),
        "accounts.pnl": (m.Empty, lambda s, r, p: s.pnl(p)),
        "positions.list": (m.AccountRequest, lambda s, r, p: s.positions_all(r, p)),
        "positions.page": (m.PositionsPageRequest, lambda s, r, p: s.positions_page(r, p)),
        "positions.get": (m.PositionRequest, lambda s, r, p: s.position(r, p)),
        "positions.invalidate": (m.AccountRequest, lambda s, r, p: s.invalidate(r, p)),
        "orders.place": (m.PlaceOrderRequest, lambda s, r, p: s.orders.place(r, p)),
        "orders.reply": (m.ReplyRequest, lambda s, r, p: s.orders.reply(r, p)),
        "orders.cancel": (m.CancelRequest, lambda s, r, p: s.orders.cancel(r, p)),
        "orders.modify": (m.ModifyRequest, lambda s, r, p: s.orders.modify(r, p)),
        "orders.whatif": (m.WhatIfRequest, lambda s, r, p: s.orders.whatif(r, p)),
        "orders.live": (m.LiveOrdersRequest, lambda s, r, p: s.orders.live(r, p)),
        "orders.status": (m.OrderStatusRequest, lambda s, r, p: s.orders.status(r, p)),
        "orders.lookup": (m.LookupRequest, lambda s, r, p: s.orders.lookup(r, p)),
        "orders.suppress": (m.SuppressRequest, lambda s, r, p: s.orders.suppress(r, p)),
        "orders.suppress_reset": (m.Empty, lambda s, r, p: s.orders.suppress_reset(p)),
        "trades.list": (m.TradesRequest, lambda s, r, p: s.orders.trades(r, p)),
        "contracts.search": (c.ContractSearchRequest, lambda s, r, p: s.search(r, p)),
        "contracts.info": (c.ContractInfoRequest, lambda s, r, p: s.contract_info(r, p)),
        "contracts.strikes": (c.StrikesRequest, lambda s, r, p: s.option_chain(r, p)),
        "contracts.secdef_info": (c.SecdefInfoRequest, lambda s, r, p: s.secdef_info(r, p)),
        "contracts.secdef": (c.SecdefRequest, lambda s, r, p: s.secdef(r, p)),
        "marketdata.snapshot": (m.SnapshotRequest, lambda s, r, p: s.snapshot(r, p)),
    }


def _reply(result: BaseModel, op: str) -> bytes:
    """`{"ok": true, "result": ...}` serialised once by pydantic (Decimals as strings), not via dicts.

    An answer NATS would refuse to carry is an error reply, never silence.
    """
    data = b'{"ok":true,"result":' + result.model_dump_json().encode() + b"}"
    if len(data) > MAX_REPLY_BYTES:
        raise ServiceError(ErrorCode.TOO_LARGE,
                           f"{op}: the answer is {len(data)} bytes, over the {MAX_REPLY_BYTES} a NATS message carries; "
                           "ask for less (one account, fewer days)", {"operation": op, "bytes": len(data)})
    return data


def answer_time(op: str, deadline_s: float | None, order_budget_s: float) -> str:
    """The AsyncAPI description of an operation: its answer time."""
    if deadline_s is None:
        return (f"`{op}`: answers within the order budget, {order_budget_s:g} s (IBKR_BRIDGE_ORDER_BUDGET_S), "
                "a lost answer's lookup by cOID included; then `unknown` with the evidence, never a second send.")
    return (f"`{op}`: answers within {deadline_s:g} s (IBKR_BRIDGE_DEADLINE_S"
            f"{', doubled for the paced live orders and trades' if op in SLOW else ''}), else TIMEOUT.")


def _register(router: NatsRouter, served: ServedConnections, subject: str, op: str, model: type[BaseModel],
              call: Call, deadline_s: float | None, description: str) -> None:
    async def handler(body: model) -> bytes:  # type: ignore[valid-type]
        connection = served.require(current_connection())
        priority = priority_of(body, op)  # type: ignore[arg-type]
        with connection.busy():
            if deadline_s is None:
                return _reply(await call(connection.service, body, priority), op)
            try:
                async with asyncio.timeout(deadline_s):
                    return _reply(await call(connection.service, body, priority), op)
            except TimeoutError:
                raise ServiceError(ErrorCode.TIMEOUT, f"{op}: no answer from the gateway within {deadline_s:.1f} s",
                                   {"operation": op, "deadline_s": deadline_s}) from None

    handler.__name__ = handler.__qualname__ = "handle_" + subject.replace(".*.", "_").replace(".", "_").replace(
        "-", "_")
    router.subscriber(subject, queue=QUEUE, max_workers=MAX_WORKERS, description=description + UNKNOWN)(handler)


def build_router(served: ServedConnections, settings: BridgeSettings) -> NatsRouter:
    """The bridge's router: `ibkr.*.bridge.<op>` for every operation, the public contracts subjects and the
    status subject, each on every connection."""
    router = NatsRouter(middlewares=[reply_middleware(), ConnectionMiddleware])
    deadline_s, budget = settings.deadline_s, settings.order_budget_s
    for op, (model, call) in _operations().items():
        limit = None if op in NO_DEADLINE else deadline_s * 2 if op in SLOW else deadline_s
        _register(router, served, Subjects.every_connection().bridge(op), op, model, call, limit,
                  answer_time(op, limit, budget))
    _register(router, served, Subjects.every_connection().command("contracts.search"), "contracts.search",
              c.ContractSearchRequest, lambda s, r, p: s.search(r, p), deadline_s,
              answer_time("contracts.search", deadline_s, budget))
    _register(router, served, Subjects.every_connection().command("contracts.option_chain"), "contracts.option_chain",
              c.OptionChainRequest, lambda s, r, p: s.option_chain(r, p), deadline_s,
              answer_time("contracts.option_chain", deadline_s, budget))

    async def status_details(conn: str) -> dict[str, Any]:
        return {"gateway": served.require(conn).state()}

    add_status_responder(router, Subjects.every_connection(), "gateway-bridge", served.clock, queue=QUEUE,
                         details_of=status_details)
    return router
