"""build_app(config) -> the ASGI application of the simulator."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cpsim import (
    routes_contracts,
    routes_orders,
    routes_portfolio,
    routes_session,
    routes_sim,
    routes_sim_timing,
)
from cpsim.config import SimConfig
from cpsim.middleware import GatewayMiddleware
from cpsim.state import SimState
from cpsim.web import ApiError


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _internal(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


class SimApp:
    """The simulator's ASGI app: the gateway middleware outermost (it must see the server's own `send`,
    before Starlette's error middleware), then the Starlette application with the routes."""

    def __init__(self, starlette: Starlette, state: SimState) -> None:
        self.starlette = starlette
        self.state = starlette.state
        self.routes = starlette.routes
        self.asgi: ASGIApp = GatewayMiddleware(starlette, state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.asgi(scope, receive, send)


def build_app(config: SimConfig | None = None) -> SimApp:
    """The simulator as an ASGI app; `app.state.sim` is its SimState, `app.routes` its routes."""
    state = SimState(config or SimConfig())
    routes = (
        routes_session.routes(state)
        + routes_portfolio.routes(state)
        + routes_orders.routes(state)
        + routes_contracts.routes(state)
        + routes_sim.routes(state)
        + routes_sim_timing.routes(state)
    )
    app = Starlette(routes=routes, exception_handlers={ApiError: _api_error, Exception: _internal})
    app.state.sim = state
    return SimApp(app, state)
