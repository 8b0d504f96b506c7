"""Every connection the bridge serves: a gateway client, a rate limiter and a BridgeService each.

The bridge learns connections from `ibkr_common.connections.ConnectionDirectory` (the environment's
bootstrap connection, the registry's list and its `connection.*` events) and `ServedConnections`
follows it as a listener:

- a connection that appears is served at once: its own `Gateway` (an httpx client to its gateway),
  `ClientPortal` and `BridgeService`, and once the app has started its own `gateway.call` publisher (its
  connection and environment on every event);
- the `PriorityLimiter` belongs to the gateway, not to the connection: IBKR's limits hold per gateway
  (its 10 req/s pacing, the per-endpoint table, the penalty box of the caller's address), so every
  connection whose gateway has the same host and port -- the bootstrap one included -- shares one
  limiter, and the bridge keeps it for as long as it runs: a second connection registered on a gateway
  already served, or a connection deleted and registered again, or rebuilt for a new environment, finds
  the per-endpoint spacing (one `/iserver/account/orders` per 5 s, one `/sso/validate` a minute) and any
  penalty still in force, where a fresh limiter would send its first such call early: a 429, and 10
  minutes in the penalty box for every connection of that gateway;
- one whose gateway (host, port, TLS, CA) or environment changes is rebuilt: new calls go to the new
  gateway at once (through that gateway's limiter), calls already under way finish on the old one, then
  the old client closes;
- one that is removed is dropped: new requests answer NOT_FOUND at once, calls under way finish
  (within the order budget), then its client closes.

The bootstrap connection is built from the settings exactly as before (IBKR_GATEWAY_*,
IBKR_GATEWAY_CA_FILE, IBKR_DEFAULT_ENVIRONMENT) and never rebuilt: the directory keeps the
environment's gateway for it whatever the registry says. A registry connection's CA arrives as PEM
text (`gateway.ca_pem`) and stays in memory (an ssl context); nothing of it is written anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ibkr_common.clock import Clock
from ibkr_common.connections import Connection, ConnectionDirectory
from ibkr_common.events import EventPublisher
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge.client import CallRecord, ClientPortal, Gateway
from ibkr_gateway_bridge.client.gateway import new_limiter
from ibkr_gateway_bridge.client.http import make_http, pem_verify
from ibkr_gateway_bridge.events import CallEvents
from ibkr_gateway_bridge.limiter import PriorityLimiter
from ibkr_gateway_bridge.service import BridgeService
from ibkr_gateway_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)
#: Named in a tls_verify_failed error of a registry connection (the bootstrap one names IBKR_GATEWAY_CA_FILE).
REGISTRY_CA = "the connection's gateway.ca_pem"
#: Extra seconds a dropped connection's calls under way get beyond the order budget before its client closes.
RETIRE_SLACK_S = 2.0
RETIRE_POLL_S = 0.05


@dataclass(eq=False)
class Served:
    """One served connection: its settings, gateway (httpx client + limiter), client, service and events."""

    connection: Connection
    settings: BridgeSettings
    gateway: Gateway
    portal: ClientPortal
    service: BridgeService
    events: CallEvents | None = None
    #: Requests being handled on it now (a dropped connection's client closes once they are done).
    active: int = 0
    #: Every call's record goes to the metrics (set by the pool), then to the events.
    metrics: Callable[[str, CallRecord], None] | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.connection.id

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Count one request under way."""
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    def record(self, record: CallRecord) -> None:
        """The gateway's `on_call` hook: the metrics, then the `gateway.call` events of this connection."""
        if self.metrics is not None:
            self.metrics(self.id, record)
        if self.events is not None:
            self.events.record(record)

    def state(self) -> dict[str, Any]:
        """Its gateway as the bridge last saw it (health, readiness, status details)."""
        return {"url": self.settings.gateway_url, "environment": self.settings.default_environment,
                "reachable": self.gateway.reachable, "authenticated": self.gateway.authenticated}


class ServedConnections:
    """The connections the bridge serves, kept in step with its `ConnectionDirectory` (its listener)."""

    def __init__(self, settings: BridgeSettings, directory: ConnectionDirectory, clock: Clock) -> None:
        self.settings = settings
        self.directory = directory
        self.clock = clock
        #: Every call's record, by connection (the metrics); set before the app starts.
        self.on_call: Callable[[str, CallRecord], None] | None = None
        self._publisher: Callable[[Served], EventPublisher] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._closing = False
        #: One limiter per gateway address (lower-cased host, port), shared by its connections, kept for the run.
        self._limiters: dict[tuple[str, int], PriorityLimiter] = {}
        self.bootstrap = self._build(directory.bootstrap)
        self._served: dict[str, Served] = {self.bootstrap.id: self.bootstrap}

    # ---- reading ---------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Served]:
        return iter(list(self._served.values()))

    def __len__(self) -> int:
        return len(self._served)

    def get(self, conn: str) -> Served | None:
        """The served connection `conn`, or None."""
        return self._served.get(conn)

    def require(self, conn: str) -> Served:
        """The connection a request arrived for; ServiceError NOT_FOUND (field `connection`) when the bridge
        does not serve it (`ConnectionDirectory.require`)."""
        self.directory.require(conn)
        served = self._served.get(conn)
        if served is None:  # known to the directory, but its listener has not run (cannot happen in one loop step)
            raise ServiceError(ErrorCode.NOT_FOUND, f"connection {conn!r} is not served yet",
                               [{"field": "connection", "message": "not served yet"}])
        return served

    def retiring(self) -> int:
        """Dropped or replaced gateways whose calls under way have not finished yet."""
        return len(self._retiring)

    # ---- building --------------------------------------------------------------------------------

    def _settings_of(self, connection: Connection) -> BridgeSettings:
        if connection.bootstrap:
            return self.settings
        gateway = connection.gateway
        return self.settings.model_copy(update={
            "connection": connection.id, "gateway_host": gateway.host, "gateway_port": gateway.port,
            "gateway_ssl": gateway.ssl, "gateway_ca_file": None, "default_environment": connection.environment,
        })

    def limiter_for(self, settings: BridgeSettings) -> PriorityLimiter:
        """The rate limiter of the gateway at `settings`' host and port (made on first use, then shared)."""
        key = (settings.gateway_host.lower(), settings.gateway_port)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = new_limiter(settings)
        return limiter

    def _build(self, connection: Connection) -> Served:
        settings = self._settings_of(connection)
        limiter = self.limiter_for(settings)
        if connection.bootstrap:  # IBKR_GATEWAY_CA_FILE, checked as before (SettingsError when unusable)
            gateway = Gateway(settings, limiter=limiter)
        else:
            verify = pem_verify(connection.id, connection.gateway.ssl, connection.gateway.ca_pem)
            gateway = Gateway(settings, limiter=limiter, http=make_http(settings, verify), trust=REGISTRY_CA)
        portal = ClientPortal(gateway, self.clock)
        served = Served(connection, settings, gateway, portal, BridgeService(portal, settings, self.clock),
                        metrics=self._record)
        gateway.on_call = served.record
        if self._publisher is not None:
            self._attach_events(served)
        return served

    def _record(self, conn: str, record: CallRecord) -> None:
        if self.on_call is not None:
            self.on_call(conn, record)

    def _attach_events(self, served: Served) -> None:
        assert self._publisher is not None
        served.events = CallEvents(self._publisher(served))
        served.events.start()

    def start_events(self, publisher: Callable[[Served], EventPublisher]) -> None:
        """From now on every served connection publishes its `gateway.call` events (once the stream is there)."""
        self._publisher = publisher
        for served in self._served.values():
            if served.events is None:
                self._attach_events(served)

    # ---- following the directory -----------------------------------------------------------------

    async def on_change(self, before: Connection | None, after: Connection | None) -> None:
        """The directory's listener: serve, rebuild or drop a connection."""
        if after is None:
            if before is not None and (dropped := self._served.pop(before.id, None)) is not None:
                log.info("connection %s removed: no longer served", before.id)
                self._retire(dropped)
            return
        current = self._served.get(after.id)
        if current is None:
            self._served[after.id] = self._build(after)
            log.info("serving connection %s (%s, gateway %s)", after.id, after.environment, after.gateway_url)
        elif self._needs_rebuild(current.connection, after):
            self._served[after.id] = self._build(after)
            log.info("connection %s changed its gateway: now %s (%s)", after.id, after.gateway_url,
                     after.environment)
            self._retire(current)
        else:
            current.connection = after

    @staticmethod
    def _needs_rebuild(held: Connection, after: Connection) -> bool:
        if after.bootstrap:  # the environment's gateway and environment, whatever the registry says
            return False
        return held.gateway != after.gateway or held.environment != after.environment

    def _retire(self, served: Served) -> None:
        task = asyncio.get_running_loop().create_task(self._retire_when_idle(served),
                                                      name=f"retire-gateway-{served.id}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire_when_idle(self, served: Served) -> None:
        """Let the calls under way finish (at most the order budget and a little), then close its client."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.order_budget_s + RETIRE_SLACK_S
        try:
            while served.active and not self._closing and loop.time() < deadline:
                await asyncio.sleep(RETIRE_POLL_S)
            if served.active:
                log.warning("connection %s: closing its old gateway client with %d call(s) still under way",
                            served.id, served.active)
        finally:
            await self._close(served)

    @staticmethod
    async def _close(served: Served) -> None:
        served.gateway.on_call = None
        if served.events is not None:
            await served.events.stop()
        await served.portal.aclose()

    async def aclose(self) -> None:
        """Stop every connection's events and close every client (the app stops)."""
        self._closing = True
        if self._retiring:
            await asyncio.wait(list(self._retiring), timeout=10.0)
        for served in list(self._served.values()):
            await self._close(served)
