"""The outermost ASGI layer: faults, 411, rate limits, session expiry, the request log, never a traceback."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cpsim import trading
from cpsim.state import Fault, SimState

API = "/v1/api"
ALIAS = "/v1/portal"
_SLASHES = re.compile(r"/{2,}")
HTML_ERROR = (
    "<html><head><title>Error</title></head><body><h1>{status} Service Unavailable</h1>"
    "<p>The Client Portal Gateway is not able to serve this request right now.</p></body></html>"
)


async def _respond(send: Send, status: int, body: bytes = b"", ctype: bytes = b"application/json") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", ctype))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _drop(send: Send) -> bool:
    """Close the client's connection without any response (uvicorn's transport, found through `send`)."""
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.abort() if hasattr(transport, "abort") else transport.close()
    if hasattr(cycle, "disconnected"):
        cycle.disconnected = True
    return True


class GatewayMiddleware:
    """Wraps the Starlette app with the cross-cutting behaviour of the gateway."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "//" in path or (len(path) > 1 and path.endswith("/")):
            path = _SLASHES.sub("/", path).rstrip("/") or "/"
        if path.startswith(ALIAS):
            path = API + path[len(ALIAS) :]
        if path != scope["path"]:
            scope = dict(scope, path=path, raw_path=path.encode())
        if not path.startswith(API):
            await self._guarded(scope, receive, send)
            return
        await self._api(scope, receive, send, path)

    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        state = self.state
        method: str = scope["method"]
        now = state.clock.now()

        def log(status: int) -> None:
            state.requests.append({"t": now.isoformat(), "method": method, "path": path, "status": status})

        fault = state.take_fault(method, path) if state.faults else None
        if fault is not None and fault.after:
            await self._answer_lost(scope, receive, send, path, fault, log)
            return
        if fault is not None and await self._fault(fault, send, log):
            return
        await self._serve(scope, receive, send, path, log)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, path: str, log: Any) -> None:
        """The call as the gateway serves it: 411, pacing, latency, the session, then the route."""
        state = self.state
        method: str = scope["method"]
        now = state.clock.now()
        if method == "POST":
            headers = dict(scope["headers"])
            if b"content-length" not in headers and b"transfer-encoding" not in headers:
                log(411)
                await _respond(send, 411, b"Length Required", b"text/plain")
                return
        client = scope.get("client")
        limits = state.limits
        wait = limits.admit(method, path[len(API) :], now, client[0] if client else "")
        if wait is None:
            log(429)
            await _respond(send, 429)
            return
        try:
            if wait > 0:
                await asyncio.sleep(wait)  # the gateway paces what it forwards (limits.py)
            delay = state.latency.delay_s(method, path[len(API) :])
            if delay > 0:
                await asyncio.sleep(delay / 2)  # the request on its way to IBKR
            status = await self._route(scope, receive, send, delay / 2)
        finally:
            limits.release()
        log(status)

    async def _route(self, scope: Scope, receive: Receive, send: Send, answer_delay: float) -> int:
        """Session expiry, fills, then the route; its answer is held `answer_delay` s (on its way back)."""
        state = self.state
        now = state.clock.now()
        state.session.expire(now)
        try:
            trading.tick(state, now)
        except Exception as exc:  # a tick must never take a request down
            print(f"cpsim: tick failed: {exc!r}", file=sys.stderr)
        state.session.touch(now)
        status_box = [0]
        held: list[Message] = []

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
            if answer_delay > 0:
                held.append(message)
            else:
                await send(message)

        await self._guarded(scope, receive, send_wrapper)
        if held:
            await asyncio.sleep(answer_delay)
            for message in held:
                await send(message)
        return status_box[0] or 500

    async def _answer_lost(self, scope: Scope, receive: Receive, send: Send, path: str, fault: Fault,
                           log: Any) -> None:
        """Serve the call in full, then misbehave with its answer: hold it `delay_ms`, then drop the
        connection (`drop_connection`) or send it late."""
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self._serve(scope, receive, hold, path, log)
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.drop_connection:
            log(0)
            if _drop(send):
                return
            raise ConnectionAbortedError("cpsim: connection dropped by a fault, after the call was served")
        for message in held:
            await send(message)

    async def _fault(self, fault: Fault, send: Send, log: Any) -> bool:
        """Misbehave as armed; True when the call is fully answered (or dropped)."""
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.drop_connection:
            log(0)
            if _drop(send):
                return True
            raise ConnectionAbortedError("cpsim: connection dropped by a fault")
        if fault.status is None and not fault.html:
            return False
        status = fault.status or 503
        log(status)
        if fault.html:
            body = fault.body if isinstance(fault.body, str) else HTML_ERROR.format(status=status)
            await _respond(send, status, body.encode(), b"text/html; charset=utf-8")
        elif fault.body is None:
            await _respond(send, status)
        elif isinstance(fault.body, str):
            await _respond(send, status, fault.body.encode(), b"text/plain; charset=utf-8")
        else:
            await _respond(send, status, json.dumps(fault.body).encode())
        return True

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            print(f"cpsim: internal error on {scope.get('path')}: {exc!r}", file=sys.stderr)
            if not started:
                await _respond(send, 500, json.dumps({"error": "internal error"}).encode())
