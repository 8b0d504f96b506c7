import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from ibkr_common.envelope import EventEnvelope, new_event
from ibkr_common.replies import ErrorCode, ServiceError, fail, ok, validation_reply


def test_new_event_makes_payload_json_safe_and_times_utc():
    est = timezone(timedelta(hours=-5))
    env = new_event("orders.filled", conn="paper", environment="paper", source="sync-worker",
                    occurred_at=datetime(2026, 11, 24, 10, 0, tzinfo=est), account_id="DU1234567",
                    payload={"price": Decimal("101.25")})
    data = json.loads(env.to_bytes())
    assert data["payload"]["price"] == "101.25"
    assert data["occurred_at"].startswith("2026-11-24T15:00:00")
    assert EventEnvelope.model_validate_json(env.to_bytes()) == env


def test_envelope_refuses_naive_times_and_unknown_types():
    with pytest.raises(ValidationError):
        new_event("orders.filled", conn="paper", environment="paper", source="x",
                  occurred_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        new_event("orders.teleported", conn="paper", environment="paper", source="x",
                  occurred_at=datetime.now(UTC))


def test_reply_shapes():
    assert ok({"a": Decimal("1.50")}) == {"ok": True, "result": {"a": "1.50"}}
    assert fail(ErrorCode.NOT_FOUND, "no such account")["error"]["code"] == "NOT_FOUND"


def test_errors_say_whether_the_same_request_may_be_sent_again():
    assert fail(ErrorCode.NOT_FOUND, "no such account")["error"]["retryable"] is False
    assert fail(ErrorCode.COMPLIANCE_BLOCKED, "blocked")["error"]["retryable"] is False
    for code in (ErrorCode.GATEWAY_UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.TIMEOUT):
        assert fail(code, "later")["error"]["retryable"] is True, code
    assert fail(ErrorCode.INTERNAL, "state too old", retryable=True)["error"]["retryable"] is True
    assert ServiceError(ErrorCode.TIMEOUT, "no answer", retryable=False).retryable is False
    assert ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, "bridge gone").retryable is True


def test_validation_reply_names_each_field():
    class Req(BaseModel):
        symbol: str
        quantity: int

    with pytest.raises(ValidationError) as info:
        Req.model_validate({"quantity": "x"})
    reply = validation_reply(info.value)
    fields = {d["field"] for d in reply["error"]["details"]}
    assert reply["error"]["code"] == "VALIDATION_ERROR"
    assert {"symbol", "quantity"} <= {f.split(".")[-1] for f in fields} | fields
