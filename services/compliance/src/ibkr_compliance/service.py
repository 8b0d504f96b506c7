"""The order path: check, submit, confirm, cancel, modify (ARCHITECTURE.md "The order path")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.clock import Clock
from ibkr_common.connections import Connection
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
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_common.rpc import Rpc
from ibkr_common.subjects import Subjects
from ibkr_common.tasks import gather_list
from ibkr_compliance.controls import Controls
from ibkr_compliance.disclosures import DisclosureCatalogue
from ibkr_compliance.gathered import Gathered
from ibkr_compliance.instruments import Instruments
from ibkr_compliance.ledger import HOLDING, NOT_SENT, UNRESOLVED, DecisionRecord, DuplicateOrder, Ledger, LedgerEntry
from ibkr_compliance.mapping import bridge_order, engine_order
from ibkr_compliance.outcomes import (
    account_environment,
    blocked_error,
    missing_error,
    quotes_moved,
    same_body,
    uncertain_error,
    unsettled_error,
)
from ibkr_compliance.placement import Pending, Placement
from ibkr_compliance.reservations import Reservations, reserve_of
from ibkr_compliance.rules import RulesConfig, ServiceFlags, evaluate
from ibkr_compliance.rules.gates import connection_reasons
from ibkr_compliance.state import StateGatherer

EVENT_OF = {"allow": "compliance.allowed", "warn": "compliance.warned", "block": "compliance.blocked"}

#: A send is not started with less than this left of the answer time.
MIN_SEND_S = 2.0


@dataclass
class Decided:
    """A decision with what it was made on."""

    decision: Decision
    gathered: Gathered | None
    latency_ms: Decimal
    flags: dict[str, Any]
    #: What the order holds of buying power if it is sent (`reservations.reserve_of`).
    reserve: dict[str, Any] | None = None


class ComplianceService:
    """Decides orders and, when allowed, sends them through the bridge exactly once."""

    def __init__(
        self, *, subjects: Subjects, connection: Connection, rpc: Rpc, bridge: BridgeClient, ledger: Ledger,
        controls: Controls, gatherer: StateGatherer, instruments: Instruments, placement: Placement,
        publisher: EventPublisher, clock: Clock, config: RulesConfig, regime: str,
        disclosures: DisclosureCatalogue, timeout_s: float, submit_budget_s: float, reservations: Reservations,
        wake_resolver: Callable[[], None] | None = None,
    ) -> None:
        self.subjects = subjects
        #: The connection as the directory has it now (`Lanes` replaces it on every change).
        self.connection = connection
        self.environment: Literal["paper", "live"] = connection.environment  # type: ignore[assignment]
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
        self.submit_budget_s = submit_budget_s
        self.reservations = reservations
        self.wake_resolver = wake_resolver or (lambda: None)
        #: Told of every decision recorded: (action, decision, milliseconds to decide); metrics.
        self.on_decision: Callable[[str, Decision, Decimal], None] | None = None

    # ---- deciding ----------------------------------------------------------------------------

    async def decide(self, request: OrderRequest, when: datetime, *, exclude_order: str | None = None) -> Decided:
        """Evaluate `request` at `when` on freshly gathered state; the gates of the connection come first (its
        environment, whether it is enabled), and need no state."""
        started = time.perf_counter()
        connection = self.connection
        if request.environment != self.environment or not connection.enabled:
            reasons = [Reason(code=r.code, severity=r.severity, message=r.message)
                       for r in connection_reasons(ServiceFlags(connection_enabled=connection.enabled))]
            if request.environment != self.environment:
                reasons.insert(0, Reason(code="ENVIRONMENT_MISMATCH", severity="block",
                                         message=f"{request.environment} order on the {self.environment} connection"))
            decision = Decision(client_order_id=request.client_order_id, decision="block", reasons=reasons)
            return Decided(decision, None, _ms(started), {"requested_environment": request.environment,
                                                          "connection_enabled": connection.enabled})
        required = frozenset((d.id, d.version) for d in self.disclosures.required(request.environment))
        # The data is as old as it is now: ages are measured on the real clock, whatever `when` says.
        now = self.clock.now()
        # The registry's settings of the account (options level, live enablement), when it has them.
        settings = connection.account(request.account_id) if connection.accounts else None
        gathering = self.gatherer.gather(request, now, exclude_order=exclude_order, settings=settings)
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
        if gathered.missing:
            raise missing_error(gathered.missing)
        missing: list[str] = []
        if not complete:
            acknowledged = await self.controls.acknowledged(request.user_id, request.environment)
            missing = self.disclosures.missing(request.environment, acknowledged)
        if self.reservations.needs_load(request.account_id):
            await self.reservations.load(self.ledger, request.account_id, now)
        # From here on nothing awaits: the orders held now are the ones this decision sees, and the
        # caller holds this order before any other decision runs.
        held = self.reservations.pending(request.account_id, now, gathered.shown, request.client_order_id)
        if held:
            gathered.account = gathered.account.model_copy(
                update={"open_orders": gathered.account.open_orders + tuple(o for h in held for o in h.orders)})
            gathered.reserved = [row for h in held for row in h.logged]
        flags = ServiceFlags(missing_disclosures=tuple(missing), requested_environment=request.environment,
                             trading_halted=halted)
        spec = engine_order(request, gathered.symbols)
        outcome = evaluate(spec, gathered.account, self.config, when,
                           market=quotes_moved(gathered.market, when - now), regime=self.regime, flags=flags)
        reasons = [Reason(code=r.code, message=r.message, severity=r.severity) for r in outcome.reasons]
        decision = Decision(client_order_id=request.client_order_id, decision=outcome.decision, reasons=reasons,
                            regime=outcome.regime, computed=outcome.computed)
        flag_info = {"halted": halted, "missing_disclosures": missing, "at": when.isoformat(),
                     "last_good": gathered.last_good, "account_settings": "registry" if settings else "environment"}
        return Decided(decision, gathered, _ms(started), flag_info, reserve_of(spec, outcome.computed))

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

    def _event(self, request: OrderRequest, decided: Decided, action: str, *, retryable: bool = False
               ) -> EventEnvelope:
        d = decided.decision
        return self.publisher.build(
            EVENT_OF[d.decision],
            {"action": action, "client_order_id": request.client_order_id, "decision": d.decision,
             "reasons": [r.model_dump() for r in d.reasons], "regime": d.regime,
             "latency_ms": decided.latency_ms, "symbol": (d.computed or {}).get("underlying"),
             "retryable": retryable},
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
        """`orders.submit`: decide, record before sending, place once, record the outcome; answered within
        `submit_budget_s` (an uncertain send answers a retryable TIMEOUT and is resolved in the background)."""
        if request.at is not None:
            raise ServiceError(ErrorCode.VALIDATION_ERROR, "at: only orders.check evaluates at another time",
                               [{"field": "at", "message": "only for orders.check"}])
        deadline = time.monotonic() + self.submit_budget_s
        # No lookup first: the ledger's unique key on client_order_id is the idempotency check. A repeat
        # is decided again (cheap, nothing is written), then `open` refuses it and the first result is replayed.
        # When deciding fails (a service down, state too old), a known order still gets its result.
        now = self.clock.now()
        body = request.model_dump(mode="json")
        try:
            conids: list[int] = []
            if request.environment == self.environment and self.connection.enabled:
                instruments = [leg.instrument for leg in request.legs] if request.legs else [request.instrument]
                conids = await gather_list(*(self.instruments.conid_of(i) for i in instruments if i))
            decided = await self.decide(request, now)
            unsettled = unsettled_error(decided.decision)
        except ServiceError:
            known = await self.ledger.get(request.client_order_id)
            if known is None or known.status == NOT_SENT:
                raise
            same_body(known, body)
            return await self.replay(known, deadline)
        blocked = decided.decision.decision == "block"
        # Held before anything awaits (see decide): the next decision sees this order.
        held = not blocked and not unsettled and self.reservations.hold(
            request.account_id, request.client_order_id, decided.reserve, now)
        try:
            if unsettled is not None:  # logged, nothing recorded for the id
                await self.ledger.log(self._record(request, decided, "submit", now),
                                      [self._event(request, decided, "submit", retryable=True)])
                known = await self.ledger.get(request.client_order_id)
                if known is None or known.status == NOT_SENT:
                    raise unsettled
                same_body(known, body)
                return await self.replay(known, deadline)
            outcome = await self._open_and_send(request, body, decided, conids, now, deadline)
        except ServiceError as exc:
            if held and not (isinstance(exc.details, dict) and exc.details.get("status") in UNRESOLVED):
                self.reservations.release(request.account_id, request.client_order_id)
            raise
        except BaseException:
            if held:
                self.reservations.release(request.account_id, request.client_order_id)
            raise
        if held and outcome.status not in HOLDING:
            self.reservations.release(request.account_id, request.client_order_id)
        return outcome

    async def _open_and_send(self, request: OrderRequest, body: dict[str, Any], decided: Decided,
                             conids: list[int], now: datetime, deadline: float) -> OrderResult:
        blocked = decided.decision.decision == "block"
        status = "blocked" if blocked else "pending"
        result = OrderResult(**decided.decision.model_dump(), status=status).model_dump(mode="json")
        order = bridge_order(request, conids).model_dump(mode="json", exclude_none=True) if conids else {}
        result["order"] = order
        if not blocked:
            result["sent_at"], result["reserve"] = now.isoformat(), decided.reserve
        record = self._record(request, decided, "submit", now)
        events = [self._event(request, decided, "submit")]
        try:
            await self.ledger.open(record, status=status, request=body, result=result, events=events,
                                   relay_now=blocked)
        except DuplicateOrder:
            again = await self.ledger.get(request.client_order_id)
            if again is None:
                raise ServiceError(ErrorCode.CONFLICT, "client_order_id is already used") from None
            same_body(again, body)
            if again.status != NOT_SENT:
                return await self.replay(again, deadline)
            # Nothing final was recorded for the id (its send never reached the gateway): a new attempt.
            if not await self.ledger.reopen(record, status=status, request=body, result=result, events=events):
                again = await self.ledger.get(request.client_order_id) or again
                return await self.replay(again, deadline)
        if blocked:
            raise blocked_error(decided.decision)
        pending = Pending(request.client_order_id, request.account_id, request.user_id, result, "pending", order)
        left = deadline - time.monotonic()
        if left < MIN_SEND_S:
            await self.placement.not_sent(pending, ErrorCode.TIMEOUT, "no time was left to send the order")
        outcome = await self.placement.send(pending, "orders.place",
                                            {"account_id": request.account_id, "orders": [order]},
                                            timeout_s=min(self.timeout_s, left))
        if outcome["status"] == "unknown":
            self.wake_resolver()
            raise uncertain_error(request.client_order_id, "unknown")
        return OrderResult.model_validate(outcome)

    async def replay(self, entry: LedgerEntry, deadline: float | None = None) -> OrderResult:
        """The recorded result of a known client_order_id; an open row is waited for until `deadline`
        (monotonic), then a retryable TIMEOUT (the resolver gives it its outcome)."""
        while entry.status in UNRESOLVED and deadline is not None and time.monotonic() < deadline:
            if entry.status == "unknown":
                self.wake_resolver()
            await asyncio.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
            entry = await self.ledger.get(entry.client_order_id) or entry
        if entry.status in UNRESOLVED:
            raise uncertain_error(entry.client_order_id, entry.status)
        result = {**entry.result, "status": entry.status, "order_id": entry.order_id or entry.result.get("order_id")}
        if entry.status == "blocked":
            raise blocked_error(Decision.model_validate(result))
        if entry.status in ("failed", NOT_SENT):
            code = str(result.get("error_code") or "INTERNAL")
            raise ServiceError(ErrorCode(code) if code in ErrorCode.__members__ else ErrorCode.INTERNAL,
                               str(result.get("message") or "the order was not sent"),
                               retryable=entry.status == NOT_SENT)
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
        synced = await self.gatherer.synced_orders(request.account_id)
        for o in synced.orders if synced else ():
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


def _ms(started: float) -> Decimal:
    return Decimal(str(round((time.perf_counter() - started) * 1000, 3)))


def _code(code: str) -> ErrorCode:
    return ErrorCode(code) if code in ErrorCode.__members__ else ErrorCode.INTERNAL
