"""An answer too large for one NATS message is an error reply (TOO_LARGE), never silence."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge.handlers import MAX_REPLY_BYTES, _reply


class Rows(BaseModel):
    rows: list[str]


def test_an_answer_under_the_limit_is_the_ok_reply() -> None:
    data = _reply(Rows(rows=["x" * 100] * 10), "orders.live")
    assert json.loads(data) == {"ok": True, "result": {"rows": ["x" * 100] * 10}}


def test_an_answer_over_the_limit_is_too_large_naming_the_operation() -> None:
    with pytest.raises(ServiceError) as caught:
        _reply(Rows(rows=["x" * 1000] * (MAX_REPLY_BYTES // 1000 + 1)), "orders.live")
    assert caught.value.code == ErrorCode.TOO_LARGE
    assert "orders.live" in caught.value.message and caught.value.details["bytes"] > MAX_REPLY_BYTES
