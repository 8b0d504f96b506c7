"""build_app(config) -> the Starlette application of the simulator."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from cpsim import routes_contracts, routes_orders, routes_portfolio, routes_session, routes_sim
from cpsim.config import SimConfig
from cpsim.middleware import GatewayMiddleware
from cpsim.state import SimState
from cpsim.web import ApiError


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _internal(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


class SimStarlette(Starlette):
    """Starlette with the gateway middleware outermost (it must see uvicorn's own `send`)."""

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack wrapped by GatewayMiddleware."""
        return GatewayMiddleware(super().build_middleware_stack(), self.state.sim)


def build_app(config: SimConfig | None = None) -> Starlette:
    """The simulator as an ASGI app; `app.state.sim` is its SimState."""
    state = SimState(config or SimConfig())
    routes = (
        routes_session.routes(state)
        + routes_portfolio.routes(state)
        + routes_orders.routes(state)
        + routes_contracts.routes(state)
        + routes_sim.routes(state)
    )
    app = SimStarlette(routes=routes, exception_handlers={ApiError: _api_error, Exception: _internal})
    app.state.sim = state
    return app
