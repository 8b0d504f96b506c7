"""What operators see of a service: health, readiness, Prometheus metrics, traces (one call: `observe`).

`observe(app, broker, settings, service, database=engine)` at the end of a service's `build_app`:

- gives the service its own Prometheus registry (several services may run in one process, in tests);
- puts FastStream's Prometheus middleware and a correlation-id middleware on the broker, and when this
  process records traces FastStream's telemetry middleware too (context in the NATS headers), so every
  subject the broker serves or sends to is counted (and traced);
- serves `/healthz`, `/readyz` and `/metrics` on IBKR_HTTP_HOST:IBKR_HTTP_PORT while the app runs.

Readiness is NATS connected, the database answering (when the service has one), the app's start-up
done (its subscribers started) and any check the service adds; while the app stops it is not ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.prometheus import NatsPrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, disable_created_metrics, generate_latest

from ibkr_common.ops.correlation import CorrelationMiddleware
from ibkr_common.ops.figures import Figures, Reading
from ibkr_common.ops.http import OpsServer, ops_app
from ibkr_common.ops.tracing import tracing_on
from ibkr_common.settings import CommonSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ibkr_common.events import EventPublisher
    from ibkr_common.outbox import OutboxRelay

log = logging.getLogger("ibkr_common.ops")
disable_created_metrics()  # no `_created` series beside each counter and histogram: half the scrape, no use here
CHECK_TIMEOUT_S = 2.0
Check = Callable[[], Awaitable[bool]]


class Observability:
    """One service's operator surface: registry, broker middlewares, readiness checks and HTTP server."""

    def __init__(self, service: str, settings: CommonSettings, broker: NatsBroker, *,
                 database: AsyncEngine | None = None) -> None:
        self.service = service
        self.settings = settings
        self.broker = broker
        self.registry = CollectorRegistry()
        self.figures = Figures()
        self.registry.register(self.figures)
        #: True from the end of the app's start-up (subscribers started) until it begins to stop.
        self.started = False
        self.server: OpsServer | None = None
        self._checks: dict[str, Check] = {"nats": self._nats_connected, "started": self._started}
        self._details: dict[str, Callable[[], Any]] = {}
        # outermost first: the span, then the correlation id, then the counting
        broker.insert_middleware(NatsPrometheusMiddleware(registry=self.registry, app_name=service,
                                                          metrics_prefix="faststream"))
        broker.insert_middleware(CorrelationMiddleware)
        if tracing_on():  # installed before the app is built (run_service), else no span would be recorded
            broker.insert_middleware(NatsTelemetryMiddleware(include_messages_counters=False))
        self.figures.gauge("ibkr_service_info", "The service, its connection and environment (always 1).",
                           lambda: {(service, settings.connection, settings.default_environment): 1},
                           labels=("service", "connection", "environment"))
        self.figures.gauge("ibkr_nats_connected", "1 while the NATS connection is up.", self._nats_up)
        self._last_checks: dict[str, bool] = {}
        self.figures.gauge("ibkr_ready", "1 when the service was ready at the scrape (every readiness check).",
                           lambda: all(self._last_checks.values()) if self._last_checks else None)
        self.figures.gauge("ibkr_ready_check", "Each readiness check at the scrape (1 passing, 0 failing).",
                           lambda: {(name,): ok for name, ok in self._last_checks.items()}, labels=("check",))
        self.figures.sampler(self._sample_readiness)
        if database is not None:
            self.database(database)

    # ---- what a service adds ---------------------------------------------------------------------

    def check(self, name: str, check: Check) -> None:
        """A readiness condition (an async predicate, bounded to CHECK_TIMEOUT_S)."""
        self._checks[name] = check

    def detail(self, name: str, read: Callable[[], Any]) -> None:
        """Information shown in the health and readiness bodies that never makes the service not ready."""
        self._details[name] = read

    def gauge(self, name: str, documentation: str, read: Callable[[], Reading], labels: Sequence[str] = ()) -> None:
        """A gauge read at scrape time (see `Figures.gauge`)."""
        self.figures.gauge(name, documentation, read, labels)

    def counter(self, name: str, documentation: str, read: Callable[[], Reading], labels: Sequence[str] = ()) -> None:
        """A counter read at scrape time (see `Figures.counter`)."""
        self.figures.counter(name, documentation, read, labels)

    def sampler(self, sample: Callable[[], Awaitable[None]]) -> None:
        """An async refresh run before each scrape (see `Figures.sampler`)."""
        self.figures.sampler(sample)

    def database(self, engine: AsyncEngine) -> None:
        """Readiness waits for the database to answer (`SELECT 1`)."""

        async def answers() -> bool:
            from sqlalchemy import text

            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True

        self.check("database", answers)

    def outbox(self, relay: OutboxRelay) -> None:
        """`ibkr_outbox_backlog_events` and the age of the oldest unpublished event, counted at each scrape."""
        backlog: dict[str, float] = {}

        async def sample() -> None:
            count, oldest = await relay.backlog()
            backlog["events"] = count
            backlog["age"] = 0.0 if oldest is None else max(0.0, (relay.clock.now() - oldest).total_seconds())

        self.sampler(sample)
        source = relay.publisher.source
        self.gauge("ibkr_outbox_backlog_events", "Events written to the outbox and not yet published.",
                   lambda: {(source,): backlog.get("events")}, labels=("source",))
        self.gauge("ibkr_outbox_oldest_age_seconds", "Age of the oldest event not yet published (0: none).",
                   lambda: {(source,): backlog.get("age")}, labels=("source",))

    def publisher(self, publisher: EventPublisher) -> None:
        """The event publisher's acknowledged events, retry buffer and drops."""
        source = publisher.source
        self.counter("ibkr_events_published", "Events the stream acknowledged.",
                     lambda: {(source,): publisher.published}, labels=("source",))
        self.gauge("ibkr_events_retry_buffer", "Events waiting to be published again.",
                   lambda: {(source,): publisher.pending}, labels=("source",))
        self.counter("ibkr_events_dropped", "Events dropped because the retry buffer was full.",
                     lambda: {(source,): publisher.dropped}, labels=("source",))

    # ---- the endpoints -------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """The liveness body."""
        return {"status": "ok", "service": self.service, "connection": self.settings.connection,
                **self._read_details()}

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body): every check, side by side, each bounded in time."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._bounded(self._checks[n]) for n in names))
        checks = {name: "ok" if ok else "failing" for name, ok in zip(names, results, strict=True)}
        ready = all(results)
        self._last_checks = dict(zip(names, results, strict=True))
        body = {"status": "ok" if ready else "not_ready", "service": self.service,
                "connection": self.settings.connection, "checks": checks, **self._read_details()}
        return ready, body

    async def metrics(self) -> tuple[bytes, str]:
        """The Prometheus text of this service's registry, after the samplers ran."""
        await self.figures.sample()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def _sample_readiness(self) -> None:
        await self.readiness()

    def _read_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for name, read in self._details.items():
            try:
                details[name] = read()
            except Exception as exc:
                details[name] = {"error": type(exc).__name__}
        return details

    @staticmethod
    async def _bounded(check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), CHECK_TIMEOUT_S))
        except Exception:
            return False

    def _nats_up(self) -> bool:
        try:
            return bool(self.broker.connection.is_connected)
        except Exception:  # not connected yet
            return False

    async def _nats_connected(self) -> bool:
        return self._nats_up()

    async def _started(self) -> bool:
        return self.started

    # ---- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """The base URL of the HTTP endpoints once listening."""
        return self.server.url if self.server else None

    async def start(self) -> None:
        """Serve the HTTP endpoints (logs `http listening on <url>`)."""
        if self.server is not None:
            return
        self.server = OpsServer(ops_app(self.health, self.readiness, self.metrics),
                                self.settings.http_host, self.settings.http_port)
        try:
            url = await self.server.start()
        except OSError as exc:
            self.server = None
            raise OSError(f"IBKR_HTTP_HOST/IBKR_HTTP_PORT: cannot listen on {self.settings.http_host} port "
                          f"{self.settings.http_port} ({exc})") from None
        log.info("http listening on %s", url)

    async def stop(self) -> None:
        """Stop serving."""
        self.started = False
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    def attach(self, app: FastStream) -> None:
        """Serve while `app` runs: HTTP from start-up, ready after it, not ready from the first stop step."""

        async def serve() -> None:
            await self.start()

        async def ready() -> None:
            self.started = True

        async def stopping() -> None:
            self.started = False

        async def stop() -> None:
            await self.stop()

        app.on_startup(serve)
        app.after_startup(ready)
        app.on_shutdown(stopping)
        app.after_shutdown(stop)
        app.context.set_global("observability", self)


def observe(app: FastStream, broker: NatsBroker, settings: CommonSettings, service: str, *,
            database: AsyncEngine | None = None) -> Observability:
    """Health, readiness, metrics and traces for a service's app (call at the end of `build_app`)."""
    ops = Observability(service, settings, broker, database=database)
    ops.attach(app)
    return ops


def observability_of(app: FastStream) -> Observability:
    """The Observability `observe` attached to `app` (tests, the devstack)."""
    ops = app.context.get("observability")
    if not isinstance(ops, Observability):
        raise LookupError("observe() was not called for this app")
    return ops
