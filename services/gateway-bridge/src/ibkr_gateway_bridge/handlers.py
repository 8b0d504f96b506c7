"""Thin request/reply handlers: one subscriber per bridge operation, plus the public contract subjects."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.nats import NatsRouter
from pydantic import BaseModel

from ibkr_common.messages import bridge as m
from ibkr_common.messages import contracts as c
from ibkr_common.replies import ErrorCode, ServiceError, reply_middleware
from ibkr_common.status import add_status_responder
from ibkr_common.subjects import Subjects
from ibkr_gateway_bridge.service import BridgeService, priority_of

QUEUE = "gateway-bridge"
#: Operations that must not be cut short here: they resolve lost answers themselves (and may wait for
#: the 1-per-5-s live-orders and trades endpoints), each within its own overall limit, the order
#: budget (IBKR_BRIDGE_ORDER_BUDGET_S, see budget.py), and answer `unknown` with evidence when it ends.
NO_DEADLINE = frozenset({"orders.place", "orders.reply", "orders.modify", "orders.cancel", "orders.lookup"})
SLOW = frozenset({"orders.live", "trades.list"})
#: Requests handled at once per operation; the limiter, not the handler, paces the gateway.
MAX_WORKERS = 16
#: NATS' default max_payload (1 MiB) less room for headers; deploy/nats.conf keeps the default.
MAX_REPLY_BYTES = 1024 * 1024 - 4096


def _operations(s: BridgeService) -> dict[str, tuple[type[BaseModel], Callable[[Any, str], Awaitable[BaseModel]]]]:
    o = s.orders
    return {
        "session.status": (m.Empty, lambda r, p: s.session_status(p)),
        "session.tickle": (m.Empty, lambda r, p: s.tickle(p)),
        "session.validate": (m.Empty, lambda r, p: s.validate(p)),
        "session.init": (m.SessionInitRequest, lambda r, p: s.init(r)),
        "session.reauthenticate": (m.Empty, lambda r, p: s.reauthenticate(p)),
        "session.logout": (m.Empty, lambda r, p: s.logout(p)),
        "accounts.list": (m.Empty, lambda r, p: s.accounts(p)),
        "accounts.portfolio": (m.Empty, lambda r, p: s.portfolio_accounts(p)),
        "accounts.summary": (m.AccountRequest, s.summary),
        "accounts.ledger": (m.AccountRequest, s.ledger),
        "accounts.pnl": (m.Empty, lambda r, p: s.pnl(p)),
        "positions.list": (m.AccountRequest, s.positions_all),
        "positions.page": (m.PositionsPageRequest, s.positions_page),
        "positions.get": (m.PositionRequest, s.position),
        "positions.invalidate": (m.AccountRequest, s.invalidate),
        "orders.place": (m.PlaceOrderRequest, o.place),
        "orders.reply": (m.ReplyRequest, o.reply),
        "orders.cancel": (m.CancelRequest, o.cancel),
        "orders.modify": (m.ModifyRequest, o.modify),
        "orders.whatif": (m.WhatIfRequest, o.whatif),
        "orders.live": (m.LiveOrdersRequest, o.live),
        "orders.status": (m.OrderStatusRequest, o.status),
        "orders.lookup": (m.LookupRequest, o.lookup),
        "orders.suppress": (m.SuppressRequest, o.suppress),
        "orders.suppress_reset": (m.Empty, lambda r, p: o.suppress_reset(p)),
        "trades.list": (m.TradesRequest, o.trades),
        "contracts.search": (c.ContractSearchRequest, s.search),
        "contracts.info": (c.ContractInfoRequest, s.contract_info),
        "contracts.strikes": (c.StrikesRequest, s.option_chain),
        "contracts.secdef_info": (c.SecdefInfoRequest, s.secdef_info),
        "contracts.secdef": (c.SecdefRequest, s.secdef),
        "marketdata.snapshot": (m.SnapshotRequest, s.snapshot),
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


def _register(router: NatsRouter, subject: str, op: str, model: type[BaseModel],
              call: Callable[[Any, str], Awaitable[BaseModel]], deadline_s: float | None,
              description: str) -> None:
    async def handler(body: model) -> bytes:  # type: ignore[valid-type]
        priority = priority_of(body, op)  # type: ignore[arg-type]
        if deadline_s is None:
            return _reply(await call(body, priority), op)
        try:
            async with asyncio.timeout(deadline_s):
                return _reply(await call(body, priority), op)
        except TimeoutError:
            raise ServiceError(ErrorCode.TIMEOUT, f"{op}: no answer from the gateway within {deadline_s:.1f} s",
                               {"operation": op, "deadline_s": deadline_s}) from None

    handler.__name__ = handler.__qualname__ = "handle_" + subject.replace(".", "_").replace("-", "_")
    router.subscriber(subject, queue=QUEUE, max_workers=MAX_WORKERS, description=description)(handler)


def build_router(service: BridgeService, subjects: Subjects, deadline_s: float) -> NatsRouter:
    """The bridge's router: `ibkr.<conn>.bridge.<op>` for every operation, and the public contracts subjects."""
    router = NatsRouter(middlewares=[reply_middleware()])
    ops = _operations(service)
    budget = service.orders.budget_s
    for op, (model, call) in ops.items():
        limit = None if op in NO_DEADLINE else deadline_s * 2 if op in SLOW else deadline_s
        _register(router, subjects.bridge(op), op, model, call, limit, answer_time(op, limit, budget))
    _register(router, subjects.contracts_search, "contracts.search", c.ContractSearchRequest, service.search,
              deadline_s, answer_time("contracts.search", deadline_s, budget))
    _register(router, subjects.contracts_option_chain, "contracts.option_chain", c.OptionChainRequest,
              service.option_chain, deadline_s, answer_time("contracts.option_chain", deadline_s, budget))
    add_status_responder(router, subjects, "gateway-bridge", service.clock, queue=QUEUE)
    return router
