"""What a service knows of the registered connections: the bootstrap one plus the registry's.

The registry (services/registry) owns `ibkr_credentials` and the per-account settings. Every other
service learns connections from it, never from the table: `ConnectionDirectory` asks for the whole
list (`ibkr_admin.connections.directory`) once started and again every `refresh_s`, and applies the
`ibkr.*.events.connection.*` events as they come, so a connection is picked up or dropped at run time
without a restart. Listeners hear each change as `(before, after)`: `(None, c)` added, `(c, None)`
removed, `(a, b)` changed.

The connection of the environment (`IBKR_CONNECTION`, owned by `IBKR_USER_ID`) is always present, so
a stack with no registry (or one that is down) serves exactly that connection, as before.
`IBKR_SERVE_CONNECTIONS` (a regular expression over connection ids) leaves the others that do not match
out of the directory (test runs sharing one NATS server keep to their own connections with it).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.nats import NatsBroker
from pydantic import ValidationError

from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_common.rpc import Rpc, RpcError, RpcUnavailable
from ibkr_common.settings import CommonSettings
from ibkr_common.tasks import stop_task
from ibkr_contract.connections import AccountView, AdminSubjects, ConnectionList, ConnectionView, GatewaySettings
from ibkr_contract.envelope import EventEnvelope
from ibkr_contract.subjects import Subjects

log = logging.getLogger(__name__)

DIRECTORY_TIMEOUT_S = 2.0
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Connection:
    """One connection as a service serves it (no secret: the registry never sends one)."""

    id: str
    user_id: str
    environment: str
    gateway: GatewaySettings
    enabled: bool
    bootstrap: bool = False
    accounts: tuple[AccountView, ...] = ()
    updated_at: datetime = NEVER

    @property
    def gateway_url(self) -> str:
        """Base URL of its gateway, without `/v1/api`."""
        return self.gateway.url

    def account(self, account_id: str) -> AccountView | None:
        """The registry's settings of one of its accounts, if it has them."""
        return next((a for a in self.accounts if a.account_id == account_id), None)

    @classmethod
    def from_view(cls, view: ConnectionView) -> Connection:
        """From the registry's view."""
        return cls(id=view.connection, user_id=view.user_id, environment=view.environment, gateway=view.gateway,
                   enabled=view.enabled, bootstrap=view.bootstrap, accounts=tuple(view.accounts),
                   updated_at=view.updated_at)

    @classmethod
    def bootstrap_of(cls, settings: CommonSettings) -> Connection:
        """The environment's connection (`IBKR_CONNECTION`, `IBKR_GATEWAY_*`, owned by `IBKR_USER_ID`)."""
        gateway = GatewaySettings(host=settings.gateway_host, port=settings.gateway_port,
                                  ssl=settings.gateway_ssl, ca_pem=_ca_pem_of(settings.gateway_ca_file))
        return cls(id=settings.connection, user_id=settings.user_id, environment=settings.default_environment,
                   gateway=gateway, enabled=True, bootstrap=True)


Listener = Callable[[Connection | None, Connection | None], Awaitable[None]]


def _ca_pem_of(path: Path | None) -> str | None:
    """The text of IBKR_GATEWAY_CA_FILE when it is a PEM the registry's model holds, else None.

    Never fails: the file may have vanished or be a bundle too large for `GatewaySettings.ca_pem`; the
    service that uses it (the gateway-bridge) reads and checks the file itself, with a clear settings error."""
    if path is None:
        return None
    try:
        text = path.read_text()
        return GatewaySettings(host="localhost", port=1, ca_pem=text).ca_pem
    except (OSError, UnicodeDecodeError, ValidationError):
        return None


def not_registered(conn: str) -> ServiceError:
    """The NOT_FOUND error (field `connection`) of a request for a connection that is not registered or served."""
    return ServiceError(ErrorCode.NOT_FOUND, f"connection {conn!r} is not registered",
                        [{"field": "connection", "message": "not registered"}])


def connection_of_subject(subject: str) -> str:
    """The `<conn>` token of a subject under `ibkr.<conn>.…` (a handler subscribed to `ibkr.*.…` learns its
    connection from the subject it was called on)."""
    parts = subject.split(".")
    if len(parts) < 3:
        raise ValueError(f"not a connection subject: {subject!r}")
    return parts[1]


_message: ContextVar[StreamMessage[Any] | None] = ContextVar("ibkr_message", default=None)


class ConnectionMiddleware(BaseMiddleware):
    """Holds the message being handled, so a handler subscribed over every connection
    (`Subjects.every_connection()`) learns its connection with `current_connection()`, and an event handler
    reads the message's subject and raw body with `current_message()`.

    Add it to the router of such handlers (`NatsRouter(middlewares=[..., ConnectionMiddleware])`). FastStream's
    own ways to reach the message in a handler (the `NatsMessage` annotation, `Context`, `Path`) are resolved
    by fast_depends in a worker thread for every message, which a hot path cannot afford (about 0.1 ms of CPU
    and a thread hop per message); a middleware costs next to nothing."""

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        token = _message.set(msg)
        try:
            return await call_next(msg)
        finally:
            _message.reset(token)


def current_message() -> StreamMessage[Any]:
    """The message being handled (under `ConnectionMiddleware`): `.raw_message.subject`, `.body` (raw bytes);
    ValueError outside one."""
    msg = _message.get()
    if msg is None:
        raise ValueError("no message is being handled (is ConnectionMiddleware on the router?)")
    return msg


def current_connection() -> str:
    """The `<conn>` of the message being handled (under `ConnectionMiddleware`); ValueError outside one."""
    msg = _message.get()
    return connection_of_subject(msg.raw_message.subject if msg is not None else "")


class ConnectionDirectory:
    """The connections this service serves, kept current from the registry's list and events."""

    def __init__(self, broker: NatsBroker, settings: CommonSettings, *, refresh_s: float = 30.0) -> None:
        self.broker = broker
        self.refresh_s = refresh_s
        self.bootstrap = Connection.bootstrap_of(settings)
        self.enforce_ownership = settings.enforce_ownership
        self._serves = re.compile(settings.serve_connections) if settings.serve_connections else None
        self._connections: dict[str, Connection] = {self.bootstrap.id: self.bootstrap}
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.registry_seen = False

    # reading
    def serves(self, conn: str) -> bool:
        """Whether this instance serves `conn`: the bootstrap connection always, another one when its id
        matches `IBKR_SERVE_CONNECTIONS` in full (empty: every one). Others are left out of the directory."""
        return conn == self.bootstrap.id or self._serves is None or self._serves.fullmatch(conn) is not None

    def get(self, conn: str) -> Connection | None:
        """The connection `conn`, or None when it is not registered."""
        return self._connections.get(conn)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections.values()))

    def __len__(self) -> int:
        return len(self._connections)

    def __contains__(self, conn: object) -> bool:
        return conn in self._connections

    def require(self, conn: str, user_id: str | None = None) -> Connection:
        """The connection a request is for, checked against who asks.

        Raises ServiceError NOT_FOUND (field `connection`) when it is not registered, and FORBIDDEN when
        `user_id` is given and is not its owner: always for a registry connection, and for the bootstrap
        connection when `IBKR_ENFORCE_OWNERSHIP` is on (its owner is `IBKR_USER_ID`)."""
        connection = self._connections.get(conn)
        if connection is None:
            raise not_registered(conn)
        checked = not connection.bootstrap or self.enforce_ownership
        if user_id is not None and checked and user_id != connection.user_id:
            raise ServiceError(ErrorCode.FORBIDDEN, f"user_id {user_id!r} does not own connection {conn!r}",
                               [{"field": "user_id", "message": "not the connection's owner"}])
        return connection

    # wiring
    def on_change(self, listener: Listener) -> None:
        """Call `listener(before, after)` on every change (added, changed, removed)."""
        self._listeners.append(listener)

    def subscribe(self) -> None:
        """Register the broker subscriber of `ibkr.*.events.connection.>` (before the broker starts).

        No queue group: every instance of every service must hear every change. No reply either: the event's
        publisher is waiting for JetStream's acknowledgement on the same inbox, not for ours."""

        async def on_event(body: EventEnvelope) -> None:
            await self.apply_event(body)

        self.broker.subscriber(Subjects.every_connection().events_of("connection"), no_reply=True,
                               description="The registry's connection events (every instance hears each).")(on_event)

    async def start(self) -> None:
        """Read the registry's list now, then again every `refresh_s` in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="connection-directory")

    async def stop(self) -> None:
        """Stop the background refresh."""
        await stop_task(self._task)
        self._task = None

    # changes
    async def refresh(self) -> bool:
        """Replace the registered connections by the registry's list; False when the registry did not answer."""
        try:
            result = await Rpc(self.broker).call(AdminSubjects().command("connections.directory"), {},
                                                 DIRECTORY_TIMEOUT_S)
        except (RpcUnavailable, RpcError) as exc:
            log.debug("connection registry not available: %s", exc)
            return False
        listed = {v.connection: Connection.from_view(v) for v in ConnectionList.model_validate(result).connections
                  if self.serves(v.connection)}
        self.registry_seen = True
        async with self._lock:
            for conn in [c for c in self._connections if c not in listed and c != self.bootstrap.id]:
                await self._set(conn, None)
            if self.bootstrap.id not in listed and self._connections[self.bootstrap.id] != self.bootstrap:
                await self._set(self.bootstrap.id, self.bootstrap)
            for conn, connection in listed.items():
                await self._set(conn, self._merged(connection))
        return True

    async def apply_event(self, envelope: EventEnvelope) -> None:
        """Apply one `connection.*` event (newer than what is held, else ignored)."""
        view = ConnectionView.model_validate(envelope.payload.get("connection"))
        if not self.serves(view.connection):
            return
        async with self._lock:
            held = self._connections.get(view.connection)
            if envelope.type == "connection.removed":
                await self._set(view.connection, self.bootstrap if view.connection == self.bootstrap.id else None)
                return
            if held is not None and not held.bootstrap and held.updated_at > view.updated_at:
                return
            await self._set(view.connection, self._merged(Connection.from_view(view)))

    def _merged(self, connection: Connection) -> Connection:
        """The registry's view of the bootstrap connection keeps the environment's gateway."""
        if connection.id != self.bootstrap.id:
            return connection
        return replace(connection, gateway=self.bootstrap.gateway, bootstrap=True)

    async def _set(self, conn: str, after: Connection | None) -> None:
        before = self._connections.get(conn)
        if before == after:
            return
        if after is None:
            self._connections.pop(conn, None)
        else:
            self._connections[conn] = after
        for listener in self._listeners:
            try:
                await listener(before, after)
            except Exception:  # one listener's failure must not stop the others or the directory
                log.exception("connection listener failed for %s", conn)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except Exception:  # the next round tries again; the held connections stay served meanwhile
                log.exception("refreshing the connection directory failed")
