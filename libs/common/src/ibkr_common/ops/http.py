"""The operators' HTTP server of a service: `/healthz`, `/readyz`, `/metrics` (uvicorn + Starlette).

It runs in the service's own event loop (started and stopped with the app), so readiness checks
await the same NATS client and database engine the service uses.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("ibkr_common.ops.http")
START_TIMEOUT_S = 10.0


def ops_app(health: Callable[[], Awaitable[dict[str, Any]]],
            readiness: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]],
            metrics: Callable[[], Awaitable[tuple[bytes, str]]]) -> Starlette:
    """The ASGI app: liveness (always 200 while serving), readiness (200 or 503), Prometheus text."""

    async def healthz(_: Request) -> Response:
        return JSONResponse(await health())

    async def readyz(_: Request) -> Response:
        ready, body = await readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_text(_: Request) -> Response:
        body, content_type = await metrics()
        return Response(body, media_type=content_type)

    return Starlette(routes=[
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ])


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on host:port (0: a free port); OSError when it cannot be had."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class OpsServer:
    """uvicorn serving `app` on host:port (0: a free port) inside the running event loop.

    The socket is bound here, before uvicorn starts, so a port that cannot be had is an OSError
    of `start()` and never uvicorn's `sys.exit`."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.host = host
        self.requested_port = port
        self.server = uvicorn.Server(uvicorn.Config(
            app, host=host, port=port, lifespan="off", access_log=False, log_config=None,
            log_level="warning", timeout_graceful_shutdown=1,
        ))
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str | None:
        """`http://host:port` once listening."""
        if self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> str:
        """Listen; returns the base URL. Raises OSError when the address cannot be bound."""
        sock = bind(self.host, self.requested_port)
        self.port = int(sock.getsockname()[1])
        self._task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[sock]))
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        while not self.server.started:
            if self._task.done() or asyncio.get_running_loop().time() > deadline:
                await self.stop()
                sock.close()
                raise OSError(f"the HTTP endpoints did not start on {self.host} port {self.port}")
            await asyncio.sleep(0.01)
        return str(self.url)

    async def stop(self) -> None:
        """Stop listening (connections in flight get a second to finish)."""
        task, self._task = self._task, None
        if task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(task, 5.0)
        except TimeoutError:
            log.warning("the HTTP endpoints did not stop within 5 s")
