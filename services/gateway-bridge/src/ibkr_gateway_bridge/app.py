"""build_app(settings) -> FastStream: the bridge's broker, its connections (a Client Portal client, limiter and
event publisher each) and the handlers that serve them all."""

from __future__ import annotations

import logging

from faststream import FastStream

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.connections import ConnectionDirectory
from ibkr_common.events import EventPublisher
from ibkr_common.service import document_events, ensure_events_stream, make_broker
from ibkr_common.subjects import Subjects
from ibkr_gateway_bridge.connections import Served, ServedConnections
from ibkr_gateway_bridge.handlers import build_router
from ibkr_gateway_bridge.metrics import observe_bridge
from ibkr_gateway_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)


def build_app(settings: BridgeSettings, *, clock: Clock | None = None) -> FastStream:
    """The gateway-bridge app, serving every connection of its directory.

    Tests reach its pieces: `app.served` (every connection), `app.directory`, and `app.bridge_service`, the
    bootstrap connection's service (built here, so usable before the app starts, as before).
    """
    clock = clock or SystemClock()
    broker = make_broker(settings, "gateway-bridge")
    directory = ConnectionDirectory(broker, settings)
    served = ServedConnections(settings, directory, clock)  # the bootstrap connection: SettingsError if unusable
    directory.on_change(served.on_change)
    directory.subscribe()
    broker.include_router(build_router(served, settings))
    document_events(broker, settings, ["gateway.call"], "gateway-bridge")
    app = FastStream(broker, logger=log)

    def publisher(connection: Served) -> EventPublisher:
        environment = settings.default_environment if connection.connection.bootstrap \
            else connection.connection.environment
        return EventPublisher(broker, subjects=Subjects(connection.id), stream=settings.events_stream,
                              source="gateway-bridge", environment=environment, clock=clock)

    @app.after_startup
    async def _started() -> None:
        await ensure_events_stream(broker, settings)
        served.start_events(publisher)
        await directory.start()
        log.info("gateway at %s (rate limit %.0f/s per connection); serving %d connection(s)",
                 settings.gateway_url, settings.rate_limit_rps, len(served))

    @app.on_shutdown
    async def _stopping() -> None:
        await directory.stop()
        await served.aclose()

    metrics = observe_bridge(app, broker, settings, served)
    served.on_call = metrics.record
    app.served = served  # type: ignore[attr-defined]
    app.directory = directory  # type: ignore[attr-defined]
    app.bridge_service = served.bootstrap.service  # type: ignore[attr-defined]
    return app
