"""Whatever the bridge answers becomes an observation: garbage is a gateway error, never a crash."""

import pytest

from ibkr_common.messages.bridge import SessionStatus, TickleResult
from ibkr_session_keeper.gateway import BridgeReply, auth_observation, decode_reply, error_observation


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"<html>503</html>", b"[1, 2]", b'{"result": {}}', b"null"])
def test_garbage_replies_are_gateway_errors_with_detail(raw: bytes) -> None:
    reply = decode_reply(raw)

    observation = error_observation(reply)

    assert not reply.ok
    assert observation is not None and observation.kind == "gateway_error" and observation.detail


def test_no_session_and_no_bridge_are_told_apart() -> None:
    no_session = error_observation(BridgeReply(code="NOT_AUTHENTICATED", message="the gateway has no session (401)"))
    no_bridge = error_observation(
        BridgeReply(code="NOT_AUTHENTICATED", message="the brokerage session is not open (no bridge)")
    )

    assert no_session is not None and no_session.kind == "no_session"
    assert no_bridge is not None and no_bridge.kind == "no_bridge" and no_bridge.connected


def test_rate_limited_says_nothing_about_the_session() -> None:
    assert error_observation(BridgeReply(code="RATE_LIMITED", message="429")) is None


def test_http_status_of_a_gateway_error_is_in_the_detail() -> None:
    reply = decode_reply(b'{"ok": false, "error": {"code": "GATEWAY_UNAVAILABLE", "message": "gateway answered 503",'
                         b' "details": {"status": 503, "path": "/tickle"}}}')

    observation = error_observation(reply)

    assert observation is not None and "HTTP 503" in observation.detail


def test_a_tickle_result_of_the_wrong_shape_is_a_gateway_error() -> None:
    observation = auth_observation({"authenticated": "perhaps"}, TickleResult)

    assert observation.kind == "gateway_error" and "authenticated" in observation.detail


def test_tickle_flags_and_sso_expires_are_read() -> None:
    observation = auth_observation(
        {"authenticated": True, "connected": True, "competing": False, "sso_expires_ms": 585695}, TickleResult
    )
    status = auth_observation({"authenticated": False, "connected": True, "competing": True}, SessionStatus)

    assert observation.kind == "auth" and observation.authenticated and observation.sso_expires_ms == 585695
    assert status.competing and not status.authenticated
