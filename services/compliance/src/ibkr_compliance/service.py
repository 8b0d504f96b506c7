"""The order path: check, submit, confirm, cancel, modify (ARCHITECTURE.md "The order path")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.clock import Clock
from ibkr_common.envelope import EventEnvelope
from ibkr_common.events import EventPublisher
from ibkr_common.messages.bridge import CancelRequest as BridgeCancelRequest
from ibkr_common.messages.orders import (
    CancelRequest,
    ConfirmRequest,
    Decision,
    ModifyRequest,
    OrderRequest,
    OrderResult,
    Reason,
)
from ibkr_common.messages.sync import OrdersResult
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_common.rpc import Rpc, RpcError, RpcUnavailable
from ibkr_common.subjects import Subjects
from ibkr_common.tasks import gather_list
from ibkr_compliance.controls import Controls
from ibkr_compliance.disclosures import DisclosureCatalogue
from ibkr_compliance.instruments import Instruments
from ibkr_compliance.ledger import UNRESOLVED, DecisionRecord, DuplicateOrder, Ledger, LedgerEntry
from ibkr_compliance.mapping import bridge_order, engine_order
from ibkr_compliance.placement import Pending, Placement
from ibkr_compliance.rules import MarketData, RulesConfig, ServiceFlags, evaluate
from ibkr_compliance.state import Gathered, StateGatherer

EVENT_OF = {"allow": "compliance.allowed", "warn": "compliance.warned", "block": "compliance.blocked"}


def account_environment(account_id: str) -> Literal["paper", "live"]:
    """IBKR paper accounts start with D (`DU…`), live ones with U (RULES.md 7.8)."""
    return "paper" if account_id.upper().startswith("D") else "live"


def blocked_error(decision: Decision) -> ServiceError:
    """The error reply of a blocked order: the most specific code, the Decision in `details`."""
    codes = {r.code for r in decision.reasons}
    code = ErrorCode.COMPLIANCE_BLOCKED
    if "ENVIRONMENT_MISMATCH" in codes:
        code = ErrorCode.ENVIRONMENT_MISMATCH
    elif "TRADING_HALTED" in codes:
        code = ErrorCode.TRADING_HALTED
    blocking = decision.blocking() or [r for r in decision.reasons if r.code != "OK"]  # older rows: no severity
    text = "; ".join(f"{r.code}: {r.message}" for r in blocking)
    return ServiceError(code, f"order blocked: {text}", decision.model_dump(mode="json"))


@dataclass
class Decided:
    """A decision with what it was made on."""

    decision: Decision
    gathered: Gathered | None
    latency_ms: Decimal
    flags: dict[str, Any]


class ComplianceService:
    """Decides orders and, when allowed, sends them through the bridge exactly once."""

    def __init__(
        self, *, subjects: Subjects, environment: Literal["paper", "live"], rpc: Rpc, bridge: BridgeClient,
        ledger: Ledger,
        controls: Controls, gatherer: StateGatherer, instruments: Instruments, placement: Placement,
        publisher: EventPublisher, clock: Clock, config: RulesConfig, regime: str,
        disclosures: DisclosureCatalogue, timeout_s: float, in_flight_s: float,
    ) -> None:
        self.subjects = subjects
        self.environment = environment
        self.rpc = rpc
        self.bridge = bridge
        self.ledger = ledger
        self.controls = controls
        self.gatherer = gatherer
        self.instruments = instruments
        self.placement = placement
        self.publisher = publisher
        self.clock = clock
        self.config = config
        self.regime = None if regime == "auto" else regime
        self.disclosures = disclosures
        self.timeout_s = timeout_s
        self.in_flight_s = in_flight_s
        #: Told of every decision recorded: (action, decision, milliseconds to decide); metrics.
        self.on_decision: Callable[[str, Decision, Decimal], None] | None = None

    # ---- deciding ----------------------------------------------------------------------------

    async def decide(self, request: OrderRequest, when: datetime, *, exclude_order: str | None = None) -> Decided:
        """Evaluate `request` at `when` on freshly gathered state; the environment gate comes first."""
        started = time.perf_counter()
        if request.environment != self.environment:
            reason = Reason(code="ENVIRONMENT_MISMATCH", severity="block",
                            message=f"{request.environment} order on the {self.environment} connection")
            decision = Decision(client_order_id=request.client_order_id, decision="block", reasons=[reason])
            return Decided(decision, None, _ms(started), {"requested_environment": request.environment})
        required = frozenset((d.id, d.version) for d in self.disclosures.required(request.environment))
        # The data is as old as it is now: ages are measured on the real clock, whatever `when` says.
        now = self.clock.now()
        gathering = self.gatherer.gather(request, now, exclude_order=exclude_order)
        if self.gatherer.fresh(request.account_id) and self.controls.known(request.user_id, request.environment,
                                                                           required):
            # Everything is cached: nothing to wait for side by side, so no tasks and no loop turns.
            gathered, halted = await gathering, await self.controls.halted()
            complete = await self.controls.has_all(request.user_id, request.environment, required)
        else:
            gathered, halted, complete = await asyncio.gather(
                gathering, self.controls.halted(),
                self.controls.has_all(request.user_id, request.environment, required),
            )
        missing: list[str] = []
        if not complete:
            acknowledged = await self.controls.acknowledged(request.user_id, request.environment)
            missing = self.disclosures.missing(request.environment, acknowledged)
        flags = ServiceFlags(missing_disclosures=tuple(missing), requested_environment=request.environment,
                             trading_halted=halted)
        outcome = evaluate(
            engine_order(request, gathered.symbols), gathered.account, self.config, when,
            market=quotes_moved(gathered.market, when - now), regime=self.regime, flags=flags,
        )
        reasons = [Reason(code=r.code, message=r.message, severity=r.severity) for r in outcome.reasons]
        decision = Decision(client_order_id=request.client_order_id, decision=outcome.decision, reasons=reasons,
                            regime=outcome.regime, computed=outcome.computed)
        flag_info = {"halted": halted, "missing_disclosures": missing, "at": when.isoformat()}
        return Decided(decision, gathered, _ms(started), flag_info)

    def _record(self, request: OrderRequest, decided: Decided, action: str, now: datetime) -> DecisionRecord:
        if self.on_decision is not None:
            self.on_decision(action, decided.decision, decided.latency_ms)
        snapshot = decided.gathered.snapshot(decided.flags) if decided.gathered else {"flags": decided.flags}
        d = decided.decision
        return DecisionRecord(
            account_id=request.account_id, client_order_id=request.client_order_id, action=action,
            decision=d.decision, reason_codes=[r.code for r in d.reasons], regime=d.regime,
            order=request.model_dump(mode="json"), state_snapshot=snapshot,
            latency_ms=decided.latency_ms, decided_at=now,
        )

    def _event(self, request: OrderRequest, decided: Decided, action: str) -> EventEnvelope:
        d = decided.decision
        return self.publisher.build(
            EVENT_OF[d.decision],
            {"action": action, "client_order_id": request.client_order_id, "decision": d.decision,
             "reasons": [r.model_dump() for r in d.reasons], "regime": d.regime,
             "latency_ms": decided.latency_ms, "symbol": (d.computed or {}).get("underlying")},
            account_id=request.account_id, user_id=request.user_id, correlation_id=request.client_order_id,
        )

    async def check(self, request: OrderRequest) -> Decision:
        """`orders.check`: the Decision (at `request.at` when given); nothing is sent."""
        now = self.clock.now()
        decided = await self.decide(request, request.at or now)
        await self.ledger.log(self._record(request, decided, "check", now), [self._event(request, decided, "check")])
        return decided.decision

    # ---- submitting --------------------------------------------------------------------------

    async def submit(self, request: OrderRequest) -> OrderResult:
        """`orders.submit`: decide, record before sending, place once, record the outcome."""
        if request.at is not None:
            raise ServiceError(ErrorCode.VALIDATION_ERROR, "at: only orders.check evaluates at another time",
                               [{"field": "at", "message": "only for orders.check"}])
        # No lookup first: the ledger's unique key on client_order_id is the idempotency check. A repeat
        # is decided again (cheap, nothing is written), then `open` refuses it and the first result is replayed.
        # When deciding fails (the bridge is down after a restart, say), a known order still gets its result.
        now = self.clock.now()
        try:
            conids: list[int] = []
            if request.environment == self.environment:
                instruments = [leg.instrument for leg in request.legs] if request.legs else [request.instrument]
                conids = await gather_list(*(self.instruments.conid_of(i) for i in instruments if i))
            decided = await self.decide(request, now)
        except ServiceError:
            known = await self.ledger.get(request.client_order_id)
            if known is None:
                raise
            return await self.replay(known, wait=True)
        blocked = decided.decision.decision == "block"
        status = "blocked" if blocked else "pending"
        result = OrderResult(**decided.decision.model_dump(), status=status).model_dump(mode="json")
        order = bridge_order(request, conids).model_dump(mode="json", exclude_none=True) if conids else {}
        result["order"] = order
        try:
            await self.ledger.open(
                self._record(request, decided, "submit", now), status=status,
                request=request.model_dump(mode="json"), result=result,
                events=[self._event(request, decided, "submit")], relay_now=blocked,
            )
        except DuplicateOrder:
            again = await self.ledger.get(request.client_order_id)
            if again is None:
                raise ServiceError(ErrorCode.CONFLICT, "client_order_id is already used") from None
            return await self.replay(again, wait=True)
        if blocked:
            raise blocked_error(decided.decision)
        pending = Pending(request.client_order_id, request.account_id, request.user_id, result, "pending", order)
        outcome = await self.placement.send(pending, "orders.place",
                                            {"account_id": request.account_id, "orders": [order]})
        return OrderResult.model_validate(outcome)

    async def replay(self, entry: LedgerEntry, *, wait: bool = False) -> OrderResult:
        """The recorded result of a known client_order_id; unresolved rows are asked about by cOID first."""
        deadline = time.monotonic() + (self.in_flight_s if wait else 0)
        while entry.status in UNRESOLVED:
            entry = await self.placement.resolve(entry, min_age_s=self.in_flight_s)
            if entry.status not in UNRESOLVED or entry.status == "unknown" or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
            entry = await self.ledger.get(entry.client_order_id) or entry
        result = {**entry.result, "status": entry.status, "order_id": entry.order_id or entry.result.get("order_id")}
        if entry.status == "blocked":
            raise blocked_error(Decision.model_validate(result))
        if entry.status == "failed":
            code = str(result.get("error_code") or "INTERNAL")
            raise ServiceError(ErrorCode(code) if code in ErrorCode.__members__ else ErrorCode.INTERNAL,
                               str(result.get("message") or "the order was not sent"))
        return OrderResult.model_validate(result)

    async def confirm(self, request: ConfirmRequest) -> OrderResult:
        """`orders.confirm`: the user's answer to IBKR's question, logged with who gave it."""
        entry = await self.ledger.get(request.client_order_id)
        if entry is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no order {request.client_order_id}",
                               [{"field": "client_order_id", "message": "unknown"}])
        if entry.status != "confirmation_required":
            if entry.status in ("submitted", "rejected", "unknown"):
                return await self.replay(entry)
            raise ServiceError(ErrorCode.CONFLICT, f"order {request.client_order_id} is {entry.status}")
        question = entry.result.get("confirmation") or {}
        if question.get("reply_id") != request.reply_id:
            raise ServiceError(ErrorCode.CONFLICT, "reply_id is not the open question of this order",
                               [{"field": "reply_id", "message": f"expected {question.get('reply_id')}"}])
        user = str(entry.request.get("user_id") or "")
        answered_by = request.answered_by or f"user:{user}"
        pending = Pending(entry.client_order_id, entry.account_id, user, dict(entry.result), entry.status,
                          dict(entry.result.get("order") or {}), entry.result.get("new_request"),
                          announce=entry.result.get("new_request") is None)
        outcome = await self.placement.answer(pending, request.reply_id, request.confirmed, answered_by,
                                              list(question.get("message_ids") or []))
        return OrderResult.model_validate(outcome)

    # ---- cancel and modify -------------------------------------------------------------------

    def _gate_account(self, account_id: str) -> None:
        if account_environment(account_id) != self.environment:
            raise ServiceError(ErrorCode.ENVIRONMENT_MISMATCH,
                               f"account {account_id} is not a {self.environment} account",
                               [{"field": "account_id", "message": "environment mismatch"}])

    async def cancel(self, request: CancelRequest) -> dict[str, Any]:
        """`orders.cancel`: always allowed (it reduces risk); logged."""
        self._gate_account(request.account_id)
        order_id = request.order_id
        entry = await self.ledger.get(request.client_order_id) if request.client_order_id else None
        if order_id is None:
            if entry is None or not entry.order_id:
                raise ServiceError(ErrorCode.NOT_FOUND, f"no sent order {request.client_order_id}",
                                   [{"field": "client_order_id", "message": "unknown or not sent"}])
            order_id = entry.order_id
        try:
            done = await self.bridge.cancel(
                BridgeCancelRequest(account_id=request.account_id, order_id=order_id, priority="order"))
        except BridgeError as exc:
            if not exc.answered:
                raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, f"cancel not confirmed: {exc.message}") from None
            raise ServiceError(_code(exc.code), exc.message, exc.details) from None
        now = self.clock.now()
        await self.ledger.log(DecisionRecord(
            account_id=request.account_id, client_order_id=entry.client_order_id if entry else None,
            action="cancel", decision="allow", reason_codes=[], regime=None,
            order=request.model_dump(mode="json"), state_snapshot={}, latency_ms=None, decided_at=now,
        ))
        return {"order_id": done.order_id, "status": done.status, "message": done.message}

    async def _original(self, request: ModifyRequest) -> tuple[OrderRequest, LedgerEntry | None]:
        entry = await self.ledger.by_order_id(request.account_id, request.order_id)
        if entry is not None:
            return OrderRequest.model_validate(entry.request), entry
        try:
            raw = await self.rpc.call(self.subjects.orders_get, {"account_id": request.account_id}, self.timeout_s)
            orders = OrdersResult.model_validate(raw).orders
        except (RpcError, RpcUnavailable):
            orders = []
        for o in orders:
            if o.order_id == request.order_id and o.conid and o.side and o.quantity and o.order_type:
                return OrderRequest.model_validate({
                    "client_order_id": o.client_order_id or f"modify-{o.order_id}",
                    "user_id": request.user_id or self.ledger.owner, "account_id": o.account_id,
                    "environment": self.environment, "instrument": {"conid": o.conid}, "side": o.side,
                    "quantity": o.quantity, "order_type": o.order_type, "limit_price": o.limit_price,
                    "stop_price": o.stop_price, "tif": o.tif if o.tif in ("DAY", "GTC", "IOC") else "DAY",
                }), None
        raise ServiceError(ErrorCode.NOT_FOUND, f"no order {request.order_id} on {request.account_id}",
                           [{"field": "order_id", "message": "unknown order"}])

    async def modify(self, request: ModifyRequest) -> OrderResult:
        """`orders.modify`: the changed order is checked again (without its own reservation), then sent."""
        self._gate_account(request.account_id)
        original, entry = await self._original(request)
        changes = {k: v for k, v in (("quantity", request.quantity), ("limit_price", request.limit_price),
                                     ("stop_price", request.stop_price), ("tif", request.tif)) if v is not None}
        if not changes:
            raise ServiceError(ErrorCode.VALIDATION_ERROR, "nothing to change",
                               [{"field": "body", "message": "give quantity, limit_price, stop_price or tif"}])
        changed = OrderRequest.model_validate({**original.model_dump(), **changes, "at": None})
        now = self.clock.now()
        decided = await self.decide(changed, now, exclude_order=request.order_id)
        await self.ledger.log(self._record(changed, decided, "modify", now), [self._event(changed, decided, "modify")])
        if decided.decision.decision == "block":
            raise blocked_error(decided.decision)
        instruments = [leg.instrument for leg in changed.legs] if changed.legs else [changed.instrument]
        conids = await gather_list(*(self.instruments.conid_of(i) for i in instruments if i))
        order = bridge_order(changed, conids).model_copy(update={"coid": None})
        payload = {"account_id": request.account_id, "order_id": request.order_id,
                   "order": order.model_dump(mode="json", exclude_none=True)}
        base = OrderResult(**decided.decision.model_dump(), status="pending", order_id=request.order_id)
        if entry is None:
            pending = Pending(changed.client_order_id, request.account_id, changed.user_id,
                              base.model_dump(mode="json"), "detached", payload["order"], announce=False)
            outcome = await self.placement.send(pending, "orders.modify", payload)
            return OrderResult.model_validate(outcome)
        result = {**entry.result, **base.model_dump(mode="json", exclude={"status"})}
        pending = Pending(entry.client_order_id, entry.account_id, changed.user_id, result, entry.status,
                          payload["order"], changed.model_dump(mode="json"), announce=False)
        outcome = await self.placement.send(pending, "orders.modify", payload)
        return OrderResult.model_validate(outcome)

    async def resolve_unresolved(self, max_age: timedelta = timedelta(days=7)) -> int:
        """Ledger rows left pending/unknown (crash, lost answer): ask the broker by cOID. Returns how many."""
        resolved = 0
        for entry in await self.ledger.unresolved(self.clock.now(), max_age):
            after = await self.placement.resolve(entry, min_age_s=self.in_flight_s)
            resolved += after.status not in UNRESOLVED
        return resolved


def quotes_moved(market: MarketData, by: timedelta) -> MarketData:
    """The quotes as if taken `by` later (a what-if at another time keeps each quote's age)."""
    if not by:
        return market
    quotes = {symbol: q.model_copy(update={"as_of": q.as_of + by}) if q.as_of else q
              for symbol, q in market.quotes.items()}
    return market.model_copy(update={"quotes": quotes})


def _ms(started: float) -> Decimal:
    return Decimal(str(round((time.perf_counter() - started) * 1000, 3)))


def _code(code: str) -> ErrorCode:
    return ErrorCode(code) if code in ErrorCode.__members__ else ErrorCode.INTERNAL
