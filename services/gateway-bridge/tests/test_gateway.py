"""Gateway error mapping and quirks, against scripted gateway answers (httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from ibkr_common.replies import ErrorCode
from ibkr_gateway_bridge.client import CallRecord, Gateway, GatewayError
from ibkr_gateway_bridge.settings import BridgeSettings

Handler = Callable[[httpx.Request], httpx.Response]


def make(handler: Handler) -> tuple[Gateway, list[httpx.Request], list[CallRecord]]:
    seen: list[httpx.Request] = []
    records: list[CallRecord] = []

    def wrapped(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    settings = BridgeSettings(IBKR_RATE_LIMIT_RPS=100)
    http = httpx.AsyncClient(base_url="https://gw/v1/api", transport=httpx.MockTransport(wrapped))
    gateway = Gateway(settings, http=http, on_call=records.append)
    gateway.accounts_ready = gateway.portfolio_ready = True
    return gateway, seen, records


@pytest.mark.parametrize(("response", "code", "reason"), [
    (httpx.Response(401, text="Unauthorized"), ErrorCode.NOT_AUTHENTICATED, None),
    (httpx.Response(200, json={"error": "no session"}), ErrorCode.NOT_AUTHENTICATED, None),
    (httpx.Response(200, html="<html><title>Gateway down</title></html>"), ErrorCode.GATEWAY_UNAVAILABLE, "html_body"),
    (httpx.Response(503, html="<html>503</html>"), ErrorCode.GATEWAY_UNAVAILABLE, "html_body"),
    (httpx.Response(200, content=b""), ErrorCode.GATEWAY_UNAVAILABLE, "empty_body"),
    (httpx.Response(200, content=b"garbage{"), ErrorCode.GATEWAY_UNAVAILABLE, "not_json"),
    (httpx.Response(500, json={"error": "boom"}), ErrorCode.GATEWAY_UNAVAILABLE, None),
    (httpx.Response(503, json={"error": "x", "statusCode": 503}), ErrorCode.GATEWAY_UNAVAILABLE, None),
    (httpx.Response(404, text="Access Denied"), ErrorCode.GATEWAY_UNAVAILABLE, "access_denied"),
    (httpx.Response(400, json={"error": "Bad Request: accountId is not valid: X"}), ErrorCode.NOT_FOUND, None),
])
async def test_error_mapping(response: httpx.Response, code: ErrorCode, reason: str | None) -> None:
    gateway, _, records = make(lambda r: response)
    with pytest.raises(GatewayError) as info:
        await gateway.call("GET", "/iserver/secdef/search", params={"symbol": "X"})
    assert info.value.code == code
    if reason:
        assert info.value.details["reason"] == reason  # type: ignore[index]
    assert records[-1].outcome == str(code) and records[-1].path == "/iserver/secdef/search"


async def test_429_penalises_the_endpoint_and_never_calls_it_again() -> None:
    gateway, seen, _ = make(lambda r: httpx.Response(429))
    for _ in range(2):
        with pytest.raises(GatewayError) as info:
            await gateway.call("GET", "/iserver/account/trades")
        assert info.value.code == ErrorCode.RATE_LIMITED
        assert info.value.details["retry_after"] > 500  # type: ignore[index]
    assert len(seen) == 1


async def test_no_bridge_opens_the_session_and_retries_a_get_once() -> None:
    answers = iter([httpx.Response(400, json={"error": "Bad Request: no bridge", "statusCode": 400}),
                    httpx.Response(200, json={"authenticated": True, "connected": True, "competing": False}),
                    httpx.Response(200, json={"accounts": ["DU1"]}),
                    httpx.Response(200, json={"orders": []})])
    gateway, seen, records = make(lambda r: next(answers))
    assert await gateway.call("GET", "/iserver/account/orders") == {"orders": []}
    assert [r.url.path for r in seen] == ["/v1/api/iserver/account/orders", "/v1/api/iserver/auth/ssodh/init",
                                          "/v1/api/iserver/accounts", "/v1/api/iserver/account/orders"]
    assert records[-1].retries == 1


async def test_accounts_first_preflight_then_retry() -> None:
    answers = iter([httpx.Response(400, json={"error": "Bad Request: Please query /accounts first"}),
                    httpx.Response(200, json={"accounts": ["DU1"]}), httpx.Response(200, json=[])])
    gateway, seen, _ = make(lambda r: next(answers))
    assert await gateway.call("GET", "/iserver/marketdata/snapshot", params={"conids": "1"}) == []
    assert seen[1].url.path.endswith("/iserver/accounts")


async def test_preflight_runs_before_the_first_iserver_account_call() -> None:
    gateway, seen, _ = make(lambda r: httpx.Response(200, json={"accounts": []} if r.url.path.endswith(
        "/iserver/accounts") else {"x": 1}))
    gateway.accounts_ready = False
    await gateway.call("GET", "/iserver/account/{accountId}/summary", path={"accountId": "DU1"})
    assert [r.url.path for r in seen] == ["/v1/api/iserver/accounts", "/v1/api/iserver/account/DU1/summary"]


async def test_dropped_post_is_not_resent_and_may_have_been_delivered() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    gateway, seen, _ = make(drop)
    with pytest.raises(GatewayError) as info:
        await gateway.call("POST", "/iserver/account/{accountId}/orders", path={"accountId": "DU1"},
                             body={"orders": []}, retry_safe=True)
    assert info.value.maybe_delivered and len(seen) == 1
    with pytest.raises(GatewayError) as info:
        await gateway.call("GET", "/iserver/secdef/search")
    assert not info.value.maybe_delivered and len(seen) == 3  # a GET is retried once


async def test_connect_error_and_timeout() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    gateway, _, _ = make(refuse)
    with pytest.raises(GatewayError) as info:
        await gateway.call("POST", "/iserver/account/{accountId}/orders", path={"accountId": "DU1"}, body={})
    assert info.value.code == ErrorCode.GATEWAY_UNAVAILABLE and not info.value.maybe_delivered

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    gateway, _, _ = make(slow)
    with pytest.raises(GatewayError) as info:
        await gateway.call("POST", "/iserver/reply/{replyId}", path={"replyId": "abc"}, body={})
    assert info.value.code == ErrorCode.TIMEOUT and info.value.maybe_delivered


async def test_path_values_are_checked_and_events_carry_templates_only() -> None:
    gateway, _, records = make(lambda r: httpx.Response(200, json={}))
    with pytest.raises(GatewayError.__mro__[1]):
        await gateway.call("GET", "/portfolio/{accountId}/summary", path={"accountId": "../../sso"})
    await gateway.call("GET", "/portfolio/{accountId}/summary", path={"accountId": "DU1234567"})
    assert records[-1].path == "/portfolio/{accountId}/summary"
    assert "DU1234567" not in str(records[-1].payload())

