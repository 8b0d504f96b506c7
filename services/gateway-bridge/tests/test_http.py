"""The bridge's httpx client (make_http) against a real local HTTP server: pool bound, keep-alive, no cookies."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ibkr_gateway_bridge.client import Gateway
from ibkr_gateway_bridge.client.http import make_http
from ibkr_gateway_bridge.settings import BridgeSettings


class Server:
    """A plain HTTP/1.1 server: answers JSON after `delay_s`, optionally with a cookie or closing afterwards."""

    def __init__(self, *, delay_s: float = 0.0, cookie: bool = False, close_after: bool = False) -> None:
        self.delay_s = delay_s
        self.cookie = cookie
        self.close_after = close_after
        self.heads: list[bytes] = []
        self.connections = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                await asyncio.sleep(self.delay_s)
                self.in_flight -= 1
                body = json.dumps({"n": len(self.heads)}).encode()
                extra = b"Set-Cookie: x-sess-uuid=secret-session; Path=/\r\n" if self.cookie else b""
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)
                await writer.drain()
                if self.close_after:  # closes without saying so (no Connection: close), as gateways do when idle
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def settings(self, **extra: Any) -> BridgeSettings:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return BridgeSettings(IBKR_GATEWAY_HOST="127.0.0.1", IBKR_GATEWAY_PORT=port, IBKR_GATEWAY_SSL=False,
                              IBKR_RATE_LIMIT_RPS=1000, **extra)


@asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[Server]:
    server = Server(**options)
    server.server = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.server.close()


async def test_concurrent_calls_share_a_bounded_pool_of_kept_alive_connections() -> None:
    async with serving(delay_s=0.05) as server:
        async with make_http(server.settings(IBKR_BRIDGE_MAX_CONNECTIONS=2)) as http:
            answers = await asyncio.gather(*(http.get("/iserver/secdef/search") for _ in range(6)))
            assert all(a.status_code == 200 for a in answers)
            for _ in range(3):
                assert (await http.get("/tickle")).status_code == 200
        assert server.most_in_flight == 2 and server.connections == 2, vars(server)
        assert len(server.heads) == 9


async def test_requests_carry_the_prefix_and_headers_and_ignore_proxy_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing there: a client that used it would fail
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    async with serving() as server, make_http(server.settings()) as http:
        assert (await http.get("/iserver/accounts")).json() == {"n": 1}
    head = server.heads[0].lower()
    assert head.startswith(b"get /v1/api/iserver/accounts http/1.1\r\n")
    assert b"user-agent: ibkr-gateway-bridge" in head and b"accept: application/json" in head


async def test_the_bridge_keeps_and_sends_no_gateway_cookies() -> None:
    async with serving(cookie=True) as server, make_http(server.settings()) as http:
        await http.get("/one")
        await http.get("/two")
        assert list(http.cookies.jar) == []
    assert all(b"cookie:" not in head.lower() for head in server.heads)


async def test_a_connection_the_gateway_closed_after_answering_is_not_reused() -> None:
    async with serving(close_after=True) as server:
        gateway = Gateway(server.settings())
        try:
            for n in (1, 2, 3):
                assert await gateway.call("GET", "/iserver/secdef/search", params={"symbol": "AAPL"}) == {"n": n}
                await asyncio.sleep(0.02)  # the close reaches the client while the connection is idle
        finally:
            await gateway.aclose()
        assert server.connections == 3


def test_sniffio_is_installed() -> None:
    # PERFORMANCE.md: without it httpcore tries to import sniffio on every request (about 15% per call)
    assert importlib.util.find_spec("sniffio") is not None
