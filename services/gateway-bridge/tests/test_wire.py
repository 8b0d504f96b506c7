"""The lean HTTP/1.1 transport against a scripted socket server: framing, keep-alive, and every way to fail."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from ibkr_gateway_bridge.client.http import make_http
from ibkr_gateway_bridge.client.wire import LeanTransport
from ibkr_gateway_bridge.settings import BridgeSettings

Script = Callable[[bytes, int], bytes | None]


class Server:
    """Answers each request with `script(request_head, n)`; None closes the connection without answering."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                answer = self.script(head, len(self.requests))
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@asynccontextmanager
async def serving(script: Script, **options: float) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    server = Server(script)
    server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    transport = LeanTransport(verify=False, max_connections=2, **options)  # type: ignore[arg-type]
    client = httpx.AsyncClient(base_url=server.url, transport=transport, timeout=httpx.Timeout(1.0, connect=1.0))
    try:
        yield server, client
    finally:
        await client.aclose()
        server.server.close()


def answer(body: bytes, *, status: str = "200 OK", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
            ).encode() + body


async def test_json_with_content_length_keeps_one_connection_alive() -> None:
    async with serving(lambda head, n: answer(json.dumps({"n": n}).encode())) as (server, client):
        for n in range(1, 4):
            response = await client.get("/v1/api/tickle", params={"a": "1 2"})
            assert response.status_code == 200 and response.json() == {"n": n}
        assert server.connections == 1
        assert server.requests[0].startswith(b"GET /v1/api/tickle?a=1+2 HTTP/1.1\r\n")
        assert b"host: 127.0.0.1" in server.requests[0].lower()


async def test_post_body_and_headers_reach_the_server() -> None:
    async with serving(lambda head, n: answer(b'{"ok":true}')) as (server, client):
        response = await client.post("/v1/api/orders", json={"cOID": "x-1"})
        assert response.json() == {"ok": True}
        assert server.requests[0].startswith(b"POST /v1/api/orders HTTP/1.1\r\n")
        assert server.requests[0].endswith(b'{"cOID":"x-1"}')
        assert b"content-type: application/json" in server.requests[0].lower()


async def test_chunked_body_with_trailers() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
               b"4;ext=1\r\n[1, \r\n3\r\n2, \r\n2\r\n3]\r\n0\r\nX-Trailer: yes\r\n\r\n")
    async with serving(lambda head, n: chunked) as (server, client):
        assert (await client.get("/a")).json() == [1, 2, 3]
        assert (await client.get("/a")).json() == [1, 2, 3]
        assert server.connections == 1


async def test_gzip_content_is_decoded_by_httpx() -> None:
    packed = gzip.compress(b'{"zipped": true}')
    async with serving(lambda head, n: answer(packed, headers="Content-Encoding: gzip\r\n")) as (_, client):
        assert (await client.get("/a")).json() == {"zipped": True}


async def test_no_body_statuses_and_connection_close() -> None:
    def script(head: bytes, n: int) -> bytes:
        if n == 1:
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return answer(b"{}", headers="Connection: close\r\n")

    async with serving(script) as (server, client):
        assert (await client.get("/a")).status_code == 204
        assert (await client.get("/a")).json() == {}
        assert (await client.get("/a")).json() == {}
        assert server.connections == 2  # the close answer ended the first connection


async def test_body_read_to_close_without_length() -> None:
    unframed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"till\": \"eof\"}"
    async with serving(lambda head, n: unframed) as (_, client):
        assert (await client.get("/a")).json() == {"till": "eof"}


async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async with serving(lambda head, n: answer(b"{}")) as (server, client):
        await client.get("/a")
        transport = client._transport  # the idle connection, closed by the server while idle
        assert isinstance(transport, LeanTransport)
        for wires in transport._idle.values():
            for wire in wires:
                assert wire.transport is not None
                wire.transport.close()
        await asyncio.sleep(0.05)
        assert (await client.get("/a")).status_code == 200
        assert server.connections == 2


async def test_expired_keepalive_opens_a_new_connection() -> None:
    async with serving(lambda head, n: answer(b"{}"), keepalive_expiry_s=0.05) as (server, client):
        await client.get("/a")
        await asyncio.sleep(0.1)
        await client.get("/a")
        assert server.connections == 2


async def test_closed_without_answer_is_remote_protocol_error() -> None:
    async with serving(lambda head, n: None) as (_, client):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/orders", json={})


async def test_truncated_body_is_remote_protocol_error() -> None:
    cut = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\n{\"short\""
    async with serving(lambda head, n: cut) as (_, client):
        with pytest.raises(httpx.RemoteProtocolError, match="mid-answer"):
            await client.get("/a")


async def test_garbage_instead_of_http_is_remote_protocol_error() -> None:
    async with serving(lambda head, n: b"SSH-2.0-OpenSSH\r\n\r\n") as (_, client):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/a")


async def test_silence_is_read_timeout_and_the_connection_is_dropped() -> None:
    def script(head: bytes, n: int) -> bytes:
        return answer(b"{}") if n > 1 else b""  # the first request gets nothing back

    async with serving(script) as (server, client):
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/a", timeout=0.2)
        assert (await client.get("/a")).json() == {}
        assert server.connections == 2  # the timed-out connection is never reused


async def test_refused_connection_is_connect_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with httpx.AsyncClient(transport=LeanTransport(verify=False)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/a")


async def test_cancelled_request_leaves_no_connection_for_reuse() -> None:
    async with serving(lambda head, n: answer(b"{}") if n > 1 else b"") as (server, client):
        task = asyncio.create_task(client.get("/a", timeout=5))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await client.get("/a")).json() == {}
        assert server.connections == 2


def test_the_bridge_uses_the_lean_transport_unless_told_otherwise() -> None:
    assert isinstance(make_http(BridgeSettings())._transport, LeanTransport)
    fallback = make_http(BridgeSettings(IBKR_BRIDGE_HTTP_TRANSPORT="httpcore"))._transport
    assert isinstance(fallback, httpx.AsyncHTTPTransport)
