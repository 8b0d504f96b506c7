"""Sending an order through the bridge and recording what came of it, questions included.

Only compliance publishes `bridge.orders.*`. An order is sent at most once: a lost answer leaves
the ledger row `unknown`, resolved later by cOID (resolver.py), never by sending again. A send that
certainly did not leave (no bridge listened, the bridge refused it before sending) is `not_sent`:
nothing final, the same client_order_id is decided and sent again when the client retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.clock import Clock, utc_now
from ibkr_common.envelope import EventEnvelope
from ibkr_common.events import EventPublisher
from ibkr_common.messages.bridge import (
    ModifyRequest,
    PlaceOrderRequest,
    PlaceOrderResult,
    ReplyRequest,
)
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_compliance.ledger import NOT_SENT, DecisionRecord, Ledger, LedgerEntry
from ibkr_compliance.questions import QuestionPolicy

#: Bridge error codes that mean the order never left: the refusal stands (`failed`).
REFUSED = frozenset({"VALIDATION_ERROR", "ENVIRONMENT_MISMATCH", "NOT_SUPPORTED", "TRADING_HALTED"})
#: Bridge error codes that mean the order never left for now (`not_sent`, retryable).
NOT_SENT_YET = frozenset({"RATE_LIMITED", "NOT_AUTHENTICATED", "GATEWAY_UNAVAILABLE"})
#: Bridge error codes of a reply that could not be applied (the question is gone).
REPLY_GONE = frozenset({"NOT_FOUND", "VALIDATION_ERROR", "CONFLICT"})


@dataclass
class Pending:
    """The order whose outcome is being recorded."""

    client_order_id: str
    account_id: str
    user_id: str
    result: dict[str, Any]
    status: str
    order: dict[str, Any] = field(default_factory=dict)
    new_request: dict[str, Any] | None = None
    announce: bool = True


def answer_by(wait_s: float) -> datetime:
    """The deadline the bridge reads on its own clock: the wall clock's, never the service's injected clock
    (which a test may move, with the gateway's, into the past or the future)."""
    return utc_now() + timedelta(seconds=wait_s)


class Placement:
    """Talks to `bridge.orders.*` and records every outcome in the ledger."""

    def __init__(
        self, bridge: BridgeClient, ledger: Ledger, publisher: EventPublisher, policy: QuestionPolicy,
        clock: Clock, *, timeout_s: float, max_rounds: int,
    ) -> None:
        self.bridge = bridge
        self.ledger = ledger
        self.publisher = publisher
        self.policy = policy
        self.clock = clock
        self.timeout_s = timeout_s
        self.max_rounds = max_rounds

    async def send(self, pending: Pending, operation: str, payload: dict[str, Any], *,
                   timeout_s: float | None = None) -> dict[str, Any]:
        """Call a placing operation (`orders.place`, `orders.modify`) and record its outcome.

        An order not sent raises a ServiceError: retryable (`not_sent` recorded) when it may go later.
        """
        model = PlaceOrderRequest if operation == "orders.place" else ModifyRequest
        wait_s = timeout_s or self.timeout_s
        if model is PlaceOrderRequest:  # the bridge sends nothing once compliance stopped waiting
            payload = {**payload, "answer_by": answer_by(wait_s)}
        try:
            request = model.model_validate({**payload, "priority": "order"})
        except ValidationError as exc:  # never sent: what compliance built does not fit the bridge's model
            await self._finish(pending, "failed", message=str(exc)[:300], extra={"error_code": "VALIDATION_ERROR"})
            raise ServiceError(ErrorCode.VALIDATION_ERROR, f"{operation}: {exc.errors()[0]['msg']}") from None
        try:
            placed = await self.bridge.call(operation, request, PlaceOrderResult, timeout_s=wait_s)
        except BridgeError as exc:
            placing = operation == "orders.place"
            if not exc.sent and placing:  # no bridge listened: certainly not sent
                await self.not_sent(pending, ErrorCode.GATEWAY_UNAVAILABLE, "the gateway-bridge is not running")
            if exc.uncertain:
                return await self._finish(pending, "unknown", message=f"no answer from the bridge ({exc.message})")
            if exc.code in NOT_SENT_YET and placing:
                await self.not_sent(pending, _code(exc.code), exc.message, exc.details)
            if exc.code in REFUSED and placing:
                await self._finish(pending, "failed", message=exc.message, extra={"error_code": exc.code})
                raise ServiceError(_code(exc.code), exc.message, exc.details) from None
            if operation == "orders.modify":
                raise ServiceError(_code(exc.code), exc.message, exc.details) from None
            if exc.code == "BAD_REPLY":
                return await self._finish(pending, "unknown", message="unreadable answer from the bridge")
            return await self._finish(pending, "unknown", message=f"{exc.code}: {exc.message}")
        return await self.conclude(pending, placed)

    async def answer(self, pending: Pending, reply_id: str, confirmed: bool, answered_by: str,
                     message_ids: list[str]) -> dict[str, Any]:
        """Log an answer to IBKR's question, send it, and record what follows."""
        await self._log_answer(pending, reply_id, confirmed, answered_by, message_ids)
        request = ReplyRequest(reply_id=reply_id, confirmed=confirmed, account_id=pending.account_id,
                               client_order_id=pending.client_order_id, priority="order",
                               answer_by=answer_by(self.timeout_s))
        try:
            placed = await self.bridge.reply(request, timeout_s=self.timeout_s)
        except BridgeError as exc:
            if not exc.sent or exc.code == "RATE_LIMITED":  # the answer did not leave: the question still waits
                await self._finish(pending, "confirmation_required", message="IBKR asks: answer with orders.confirm",
                                   extra={"confirmation": question_of(pending.result, reply_id)})
                raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, "the gateway-bridge is not running; nothing "
                                   "was sent: answer again later", retryable=True) from None
            if not exc.answered:
                if not confirmed:  # nobody answered: a declined question is declined whatever the bridge did
                    return await self._finish(pending, "rejected", message=f"declined by {answered_by}")
                return await self._finish(pending, "unknown", message=f"no answer from the bridge ({exc.message})")
            if exc.code == "BAD_REPLY":
                return await self._finish(pending, "unknown", message="unreadable answer from the bridge")
            if not confirmed or exc.code in REPLY_GONE:
                why = f"declined by {answered_by}" if not confirmed else f"{exc.code}: {exc.message}"
                return await self._finish(pending, "rejected", message=why)
            return await self._finish(pending, "unknown", message=f"{exc.code}: {exc.message}")
        if not confirmed and placed.status != "rejected":
            return await self._finish(pending, "rejected", message=f"declined by {answered_by}")
        return await self.conclude(pending, placed)

    async def conclude(self, pending: Pending, placed: PlaceOrderResult) -> dict[str, Any]:
        """Record the bridge's outcome; answer questions the policy answers; hand the rest to the user."""
        rounds = len(pending.result.get("answers") or [])
        if placed.status == "submitted":
            return await self._finish(pending, "submitted", order_id=placed.order_id,
                                      extra={"order_status": placed.order_status}, submitted=True)
        if placed.status == "rejected":
            return await self._finish(pending, "rejected", message=placed.message)
        if placed.status == "unknown" or placed.confirmation is None:
            return await self._finish(pending, "unknown", message=placed.message,
                                      extra={"evidence": placed.evidence})
        question = placed.confirmation
        ruling = self.policy.rule(question.message_ids)
        action = ruling.action if rounds < self.max_rounds else "ask_user"
        if action == "auto_confirm":
            return await self.answer(pending, question.reply_id, True, "policy:auto_confirm", question.message_ids)
        if action == "reject":
            await self.answer(pending, question.reply_id, False, "policy:reject", question.message_ids)
            return await self._finish(
                pending, "rejected", message=f"IBKR question {','.join(question.message_ids)} rejected by policy"
            )
        confirmation = {"reply_id": question.reply_id, "messages": question.messages,
                        "message_ids": question.message_ids}
        return await self._finish(pending, "confirmation_required", extra={"confirmation": confirmation},
                                  message="IBKR asks: answer with orders.confirm")

    async def not_sent(self, pending: Pending, code: ErrorCode, message: str, details: Any = None) -> None:
        """Record that the order did not leave (`not_sent`, nothing final) and raise the retryable error."""
        await self._finish(pending, NOT_SENT, message=message, extra={"error_code": str(code)})
        raise ServiceError(code, f"{message}; nothing was sent: send the same client_order_id again later",
                           details, retryable=True)

    async def resolved(self, entry: LedgerEntry, outcome: str, *, order_id: str | None = None,
                       order_status: str | None = None, evidence: dict[str, Any]) -> bool:
        """Record the resolution of an uncertain send (`submitted`: found at the gateway; `not_sent`: proved
        absent) with its `orders.resolved` event; False when the row changed meanwhile."""
        pending = Pending(entry.client_order_id, entry.account_id, str(entry.request.get("user_id") or ""),
                          dict(entry.result), entry.status, dict(entry.result.get("order") or {}),
                          entry.result.get("new_request"), announce=entry.result.get("new_request") is None)
        resolution = {"outcome": outcome, "was": entry.status, "at": self.clock.now().isoformat(),
                      "evidence": evidence}
        event = self.publisher.build(
            "orders.resolved",
            {"client_order_id": entry.client_order_id, "outcome": outcome, "was": entry.status,
             "order_id": order_id, "evidence": evidence},
            account_id=entry.account_id, user_id=pending.user_id or None, correlation_id=entry.client_order_id,
        )
        if outcome == "submitted":
            message = f"resolved by cOID: found at the gateway ({evidence.get('source')})"
            result = await self._finish(pending, "submitted", order_id=order_id, submitted=True, message=message,
                                        extra={"order_status": order_status, "resolution": resolution},
                                        also=[event])
        else:
            result = await self._finish(pending, NOT_SENT, message="resolved by cOID: it never reached the gateway",
                                        extra={"error_code": "GATEWAY_UNAVAILABLE", "resolution": resolution},
                                        also=[event])
        return result.get("resolution") == resolution

    async def _finish(
        self, pending: Pending, status: str, *, order_id: str | None = None, message: str | None = None,
        extra: dict[str, Any] | None = None, submitted: bool = False, also: list[EventEnvelope] | None = None,
    ) -> dict[str, Any]:
        now = self.clock.now()
        result = {**pending.result, **(extra or {}), "status": status, "message": message}
        if status != "confirmation_required":
            result["confirmation"] = None
        if order_id is not None:
            result["order_id"] = order_id
        events: list[EventEnvelope] = list(also or [])
        if submitted and pending.announce:
            events.append(self.publisher.build(
                "orders.submitted",
                {"client_order_id": pending.client_order_id, "order_id": result.get("order_id"),
                 "order_status": result.get("order_status"), "order": pending.order, "message": message},
                account_id=pending.account_id, user_id=pending.user_id or None,
                correlation_id=pending.client_order_id,
            ))
        request = pending.new_request if status == "submitted" else None
        if request is not None:
            result.pop("new_request", None)
        elif pending.new_request is not None:
            result["new_request"] = pending.new_request
        # Committed before the caller gets `result`: a sent order's outcome is never only in memory.
        written = await self.ledger.record(pending.client_order_id, status=status, result=result, now=now,
                                           order_id=result.get("order_id"), request=request, events=events,
                                           expected=pending.status)
        if not written:
            current = await self.ledger.get(pending.client_order_id)
            return {**(current.result if current else result), "status": current.status if current else status}
        pending.result, pending.status = result, status
        return result

    async def _log_answer(self, pending: Pending, reply_id: str, confirmed: bool, answered_by: str,
                          message_ids: list[str]) -> None:
        now = self.clock.now()
        answer = {"reply_id": reply_id, "confirmed": confirmed, "answered_by": answered_by,
                  "message_ids": message_ids, "answered_at": now.isoformat()}
        result = {**pending.result, "answers": [*(pending.result.get("answers") or []), answer]}
        record = DecisionRecord(
            account_id=pending.account_id, client_order_id=pending.client_order_id, action="answer",
            decision="allow" if confirmed else "block", reason_codes=list(message_ids), regime=None,
            order={**answer, "user_id": pending.user_id}, state_snapshot={}, latency_ms=Decimal(0), decided_at=now,
        )
        status = "answering"
        written = await self.ledger.record(pending.client_order_id, status=status, result=result, now=now,
                                           decision=record, expected=pending.status)
        if not written:
            raise ServiceError(ErrorCode.CONFLICT, "the order was answered by another request")
        pending.result, pending.status = result, status


def question_of(result: dict[str, Any], reply_id: str) -> dict[str, Any]:
    """The open question `reply_id` as the result kept it (before it was answered)."""
    question = result.get("confirmation") or {}
    return question if question.get("reply_id") == reply_id else {"reply_id": reply_id, "messages": [],
                                                                   "message_ids": []}


def _code(code: str) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.INTERNAL


def age_s(entry: LedgerEntry, now: datetime) -> float:
    """Seconds since the row last changed."""
    return (now - entry.updated_at).total_seconds()
