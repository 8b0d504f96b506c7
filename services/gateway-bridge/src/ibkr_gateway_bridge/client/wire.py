"""A small HTTP/1.1 transport for httpx: keep-alive connections over asyncio protocols, no anyio, no h11.

The bridge talks to one gateway, sequentially paced by its limiter, with small JSON bodies. httpcore's
general machinery (anyio streams, h11's event state machine, a pool that scans every connection per
request) costs more than the network here; this transport does the same job in a few calls. httpx
still builds the requests and responses (headers, content decoding, timeouts configuration), and
the failures are httpx's own exceptions, so the error mapping in transport.py is the same for both.

`IBKR_BRIDGE_HTTP_TRANSPORT=httpcore` switches back to httpx's default transport.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

MAX_HEAD_BYTES = 64 * 1024
NO_BODY_STATUS = frozenset({204, 304})


def ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """The context for `verify` as httpx understands it (False: no verification at all)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Wire(asyncio.Protocol):
    """One TCP (or TLS) connection: bytes in a buffer, a future for whoever waits for more."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def usable(self, now: float, expiry_s: float) -> bool:
        """Idle, open, nothing unread (a server that closed or spoke unasked), not past the keep-alive expiry."""
        transport = self.transport
        return (not self.closed and not self.buffer and transport is not None and not transport.is_closing()
                and now - self.idle_since < expiry_s)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def more(self, timeout_s: float | None, request: httpx.Request) -> None:
        """Wait for more bytes; ReadTimeout, or RemoteProtocolError/ReadError when the peer went away."""
        if self.closed:
            self._raise_closed(request)
        await self._wait(timeout_s, request)
        if self.closed and not self.buffer:
            self._raise_closed(request)

    def _raise_closed(self, request: httpx.Request) -> None:
        if isinstance(self.error, OSError):
            raise httpx.ReadError(f"connection lost: {self.error}", request=request) from self.error
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)

    async def read_until(self, marker: bytes, timeout_s: float | None, request: httpx.Request, limit: int) -> bytes:
        """Bytes up to and including `marker`, taken off the buffer."""
        start = 0
        while True:
            found = self.buffer.find(marker, start)
            if found >= 0:
                end = found + len(marker)
                data = bytes(self.buffer[:end])
                del self.buffer[:end]
                return data
            if len(self.buffer) > limit:
                raise httpx.RemoteProtocolError("the gateway's answer has an oversized header", request=request)
            start = max(0, len(self.buffer) - len(marker) + 1)
            await self._more_or_truncated(timeout_s, request)

    async def read_exactly(self, size: int, timeout_s: float | None, request: httpx.Request) -> bytes:
        while len(self.buffer) < size:
            await self._more_or_truncated(timeout_s, request)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read_to_close(self, timeout_s: float | None, request: httpx.Request) -> bytes:
        while not self.closed:
            await self._wait(timeout_s, request)
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    async def _more_or_truncated(self, timeout_s: float | None, request: httpx.Request) -> None:
        if self.closed:
            if self.buffer:
                raise httpx.RemoteProtocolError("the gateway closed the connection mid-answer", request=request)
            self._raise_closed(request)
        await self.more(timeout_s, request)

    async def _wait(self, timeout_s: float | None, request: httpx.Request) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout_s):
                await self._waiter
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the gateway's answer", request=request) from None
        finally:
            self._waiter = None

def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    value: Any = request.extensions.get("timeout") or {}
    return {k: value.get(k) for k in ("connect", "read", "write", "pool")}


def _head(raw: bytes, request: httpx.Request) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.1 status line: {lines[0][:40]!r}", request=request)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:40]!r}", request=request)
        headers.append((name, value.strip()))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else b"", headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive to the gateway; at most `max_connections` at once per origin."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True, max_connections: int = 4,
                 keepalive_expiry_s: float = 30.0) -> None:
        self._ssl = ssl_context(verify)
        self._expiry_s = keepalive_expiry_s
        self._max = max_connections
        self._idle: dict[tuple[bytes, bytes, int], list[_Wire]] = {}
        self._slots: dict[tuple[bytes, bytes, int], asyncio.Semaphore] = {}
        self._open: set[_Wire] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))
        timeouts = _timeouts(request)
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(self._max)
        try:
            async with asyncio.timeout(timeouts["pool"]):
                await slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection to the gateway", request=request) from None
        try:
            body = await request.aread()
            wire = await self._connection(origin, timeouts["connect"], request)
            try:
                response, reusable = await self._exchange(wire, request, body, timeouts["read"])
            except BaseException:
                self._discard(wire)
                raise
            if reusable:
                wire.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(wire)
            else:
                self._discard(wire)
            return response
        finally:
            slots.release()

    async def _connection(self, origin: tuple[bytes, bytes, int], timeout_s: float | None,
                          request: httpx.Request) -> _Wire:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            wire = idle.pop()
            if wire.usable(now, self._expiry_s):
                return wire
            self._discard(wire)
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = self._ssl if scheme == b"https" else None
        try:
            async with asyncio.timeout(timeout_s):
                _, wire = await loop.create_connection(_Wire, host.decode("ascii"), port, ssl=context,
                                                       server_hostname=host.decode("ascii") if context else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host.decode()}:{port} within {timeout_s} s",
                                       request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        self._open.add(wire)
        return wire

    def _discard(self, wire: _Wire) -> None:
        wire.close()
        self._open.discard(wire)

    async def _exchange(self, wire: _Wire, request: httpx.Request, body: bytes,
                        read_s: float | None) -> tuple[httpx.Response, bool]:
        head = [request.method.encode(), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        assert wire.transport is not None
        if wire.closed or wire.transport.is_closing():
            raise httpx.WriteError("the connection closed before the request was written", request=request)
        wire.transport.write(b"".join(head) + body)
        while True:
            raw = await wire.read_until(b"\r\n\r\n", read_s, request, MAX_HEAD_BYTES)
            version, status, reason, headers = _head(raw, request)
            if not 100 <= status < 200 or status == 101:
                break
        content, reusable = await self._body(wire, request, version, status, headers, read_s)
        response = httpx.Response(status, headers=headers, stream=httpx.ByteStream(content),
                                  extensions={"http_version": version, "reason_phrase": reason},
                                  request=request)
        return response, reusable

    async def _body(self, wire: _Wire, request: httpx.Request, version: bytes, status: int,
                    headers: list[tuple[bytes, bytes]], read_s: float | None) -> tuple[bytes, bool]:
        connection = (_header(headers, b"connection") or b"").lower()
        keep = b"close" not in connection and (version == b"HTTP/1.1" or b"keep-alive" in connection)
        if request.method == "HEAD" or status in NO_BODY_STATUS:
            return b"", keep
        encoding = (_header(headers, b"transfer-encoding") or b"").lower()
        if b"chunked" in encoding:
            return b"".join([c async for c in _chunks(wire, request, read_s)]), keep
        length = _header(headers, b"content-length")
        if length is not None:
            if not length.isdigit():
                raise httpx.RemoteProtocolError(f"bad Content-Length {length[:20]!r}", request=request)
            return await wire.read_exactly(int(length), read_s, request), keep
        return await wire.read_to_close(read_s, request), False

    async def aclose(self) -> None:
        for wire in list(self._open):
            self._discard(wire)
        self._idle.clear()


async def _chunks(wire: _Wire, request: httpx.Request, read_s: float | None) -> AsyncIterator[bytes]:
    while True:
        line = await wire.read_until(b"\r\n", read_s, request, MAX_HEAD_BYTES)
        size_text = line[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise httpx.RemoteProtocolError(f"bad chunk size {size_text[:20]!r}", request=request) from None
        if size == 0:
            while (await wire.read_until(b"\r\n", read_s, request, MAX_HEAD_BYTES)) != b"\r\n":
                pass  # trailers
            return
        chunk = await wire.read_exactly(size + 2, read_s, request)
        if chunk[-2:] != b"\r\n":
            raise httpx.RemoteProtocolError("chunk not followed by CRLF", request=request)
        yield chunk[:-2]

