"""/sim/latency and /sim/market_hours: how fast the gateway answers and when its orders can work."""

from __future__ import annotations

from decimal import Decimal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cpsim import expiry, hours, trading
from cpsim.latency import CAP_MS
from cpsim.state import SimState
from cpsim.web import ok, sim_bool, sim_error, sim_json, sim_number, sim_object, sim_str

METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH")


def _overrides(value: object) -> dict[str, float]:
    """`{"[METHOD ]<glob on the path after /v1/api>": ms}`, validated."""
    body = sim_object(value, "overrides")
    out: dict[str, float] = {}
    for key, ms in body.items():
        where = f"overrides.{key}"
        method, _, glob = key.partition(" ") if " " in key else ("", "", key)
        if method and method.upper() not in METHODS:
            raise sim_error(where, "must be '<glob>' or '<METHOD> <glob>' (GET, POST, DELETE, PUT, PATCH)")
        if not glob.startswith(("/", "*")):
            raise sim_error(where, "the glob must start with / or * (a path after /v1/api)")
        value_ms = sim_number(ms, where, Decimal(0))
        if value_ms > Decimal(CAP_MS):
            raise sim_error(where, f"must be at most {int(CAP_MS)} ms (the gateway times out after 10 s)")
        out[key] = float(value_ms)
    return out


def routes(state: SimState) -> list[Route]:
    """The /sim/latency and /sim/market_hours routes, bound to `state`."""

    async def latency(request: Request) -> Response:
        if request.method == "POST":
            body = sim_object(await sim_json(request))
            unknown = set(body) - {"enabled", "scale", "jitter", "overrides"}
            if unknown:
                raise sim_error(sorted(unknown)[0], "is not a latency setting (enabled, scale, jitter, overrides)")
            enabled = sim_bool(body["enabled"], "enabled") if "enabled" in body else None
            scale = sim_number(body["scale"], "scale", Decimal(0)) if "scale" in body else None
            if scale is not None and scale > 100:
                raise sim_error("scale", "must be at most 100")
            jitter = sim_number(body["jitter"], "jitter", Decimal(0)) if "jitter" in body else None
            if jitter is not None and jitter > 1:
                raise sim_error("jitter", "must be between 0 and 1")
            overrides = _overrides(body["overrides"]) if "overrides" in body else None
            model = state.latency
            if enabled is not None:
                model.enabled = enabled
            if scale is not None:
                model.scale = float(scale)
            if jitter is not None:
                model.jitter = float(jitter)
            if overrides is not None:
                model.overrides = overrides
        return ok(state.latency.describe())

    async def market_hours(request: Request) -> Response:
        if request.method == "POST":
            body = sim_object(await sim_json(request))
            if "mode" not in body:
                raise sim_error("mode", "is required: exchange or always")
            try:
                mode = hours.normalise_mode(sim_str(body["mode"], "mode"))
            except ValueError as exc:
                raise sim_error("mode", str(exc)) from None
            state.market_hours = mode
            now = state.clock.now()
            expiry.stamp_unstamped(state, now)  # DAY orders placed while open around the clock get their close
            state.dirty = True
            trading.tick(state, now)  # orders held for the open work now if it is open
        return ok(hours.describe(state.market_hours, state.clock.now()))

    return [
        Route("/sim/latency", latency, methods=["GET", "POST"]),
        Route("/sim/market_hours", market_hours, methods=["GET", "POST"]),
    ]
