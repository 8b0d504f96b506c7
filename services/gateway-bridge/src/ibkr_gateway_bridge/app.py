"""build_app(settings) -> FastStream: the bridge's broker, Client Portal client, limiter and event publisher."""

from __future__ import annotations

import logging

from faststream import FastStream

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.events import EventPublisher
from ibkr_common.service import document_events, ensure_events_stream, make_broker
from ibkr_common.subjects import Subjects
from ibkr_gateway_bridge.client import ClientPortal, Gateway
from ibkr_gateway_bridge.events import CallEvents
from ibkr_gateway_bridge.handlers import build_router
from ibkr_gateway_bridge.metrics import calls_to, observe_bridge
from ibkr_gateway_bridge.service import BridgeService
from ibkr_gateway_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)


def build_app(settings: BridgeSettings, *, clock: Clock | None = None) -> FastStream:
    """The gateway-bridge app. Its pieces are reachable as `app.bridge_service` / `app.call_events` (tests)."""
    clock = clock or SystemClock()
    subjects = Subjects(settings.connection)
    broker = make_broker(settings, "gateway-bridge")
    gateway = Gateway(settings)
    portal = ClientPortal(gateway, clock)
    service = BridgeService(portal, settings, clock)
    broker.include_router(build_router(service, subjects, settings.deadline_s))
    document_events(broker, settings, ["gateway.call"], "gateway-bridge")
    app = FastStream(broker, logger=log)
    holder: dict[str, CallEvents] = {}

    @app.after_startup
    async def _started() -> None:
        await ensure_events_stream(broker, settings)
        publisher = EventPublisher(
            broker, subjects=subjects, stream=settings.events_stream,
            source="gateway-bridge", environment=settings.default_environment, clock=clock,
        )
        events = CallEvents(publisher)
        events.start()
        holder["events"] = events
        gateway.on_call = calls_to(metrics.record, events.record)
        log.info("gateway at %s (rate limit %.0f/s)", settings.gateway_url, settings.rate_limit_rps)

    @app.on_shutdown
    async def _stopping() -> None:
        gateway.on_call = None
        if "events" in holder:
            await holder["events"].stop()
        await portal.aclose()

    metrics = observe_bridge(app, broker, settings, gateway)
    app.bridge_service = service  # type: ignore[attr-defined]
    app.call_events_holder = holder  # type: ignore[attr-defined]
    return app
