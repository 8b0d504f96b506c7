"""`IbkrClient`: the stack's public commands over NATS, typed.

```python
async with IbkrClient() as ib:  # finds `make run`'s stack from .var/stack.json
    result = await ib.orders.submit(account_id="DU1234567", user_id="me", symbol="AAPL", side="BUY",
                                    quantity=10, order_type="MKT")
```
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import nats
import nats.errors
from nats.aio.client import Client
from pydantic import BaseModel, ValidationError

from ibkr_client.connections import Connections
from ibkr_client.errors import IbkrError, InternalError, NoReply, ServiceNotRunning, StackUnavailable, error_from_reply
from ibkr_client.events import EventStream
from ibkr_client.sections import Account, Audit, Compliance, Contracts, Orders, Positions, Session, Sync, Trading
from ibkr_client.stack import read_stack
from ibkr_contract.connections import AdminSubjects
from ibkr_contract.errors import ErrorBody
from ibkr_contract.requests import ADMIN_COMMAND_TABLE, COMMAND_TABLE
from ibkr_contract.status import ServiceStatus
from ibkr_contract.subjects import SERVICES, Subjects

log = logging.getLogger("ibkr_client")
M = TypeVar("M", bound=BaseModel)

#: Default seconds to wait for a reply; orders wait longer (compliance waits up to 40 s for the gateway).
DEFAULT_TIMEOUT_S = 10.0
ORDER_TIMEOUT_S = 45.0
SYNC_TIMEOUT_S = 60.0


class IbkrClient:
    """An async client of one connection of the stack.

    - `nats_url`: the stack's NATS; when None, the `.var/stack.json` that `make run` writes is looked for in
      the working directory and its parents (`stack_file` names one directly).
    - `connection`: the connection id (`ibkr.<conn>.`); default the stack file's, else `paper`.
    - `environment`: what orders built from keywords say (`paper` unless told; say `live` explicitly).
    - `timeout`: seconds to wait for a reply to a read (`order_timeout` for orders, `sync_timeout` for syncs);
      every method also takes its own `timeout=`. No reply in time raises `NoReply`.
    - `inbox_prefix`: the reply inbox prefix the NATS user may read (compose's `client` user: `_INBOX_client`);
      credentials go in the URL (`nats://client:<password>@host:4222`).
    """

    def __init__(
        self,
        nats_url: str | None = None,
        connection: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        environment: Literal["paper", "live"] = "paper",
        order_timeout: float = ORDER_TIMEOUT_S,
        sync_timeout: float = SYNC_TIMEOUT_S,
        connect_timeout: float = 5.0,
        stack_file: Path | None = None,
        inbox_prefix: str | None = None,
        name: str = "ibkr-client",
    ) -> None:
        if timeout <= 0 or order_timeout <= 0 or sync_timeout <= 0:
            raise ValueError("timeouts must be above zero")
        self.nats_url = nats_url
        self.connection = connection
        self.environment = environment
        self.timeout = timeout
        self.order_timeout = order_timeout
        self.sync_timeout = sync_timeout
        self.connect_timeout = connect_timeout
        self.stack_file = stack_file
        self.inbox_prefix = inbox_prefix
        self.name = name
        self.subjects: Subjects | None = None
        self._nc: Client | None = None
        self.orders = Orders(self)
        self.positions = Positions(self)
        self.account = Account(self)
        self.sync = Sync(self)
        self.session = Session(self)
        self.compliance = Compliance(self)
        self.trading = Trading(self)
        self.audit = Audit(self)
        self.contracts = Contracts(self)
        self.connections = Connections(self)

    # ---- connecting --------------------------------------------------------------------------------

    async def connect(self) -> IbkrClient:
        """Connect to NATS (finding the stack first when no URL was given). Raises StackNotFound/StackUnavailable."""
        if self._nc is not None:
            return self
        if self.nats_url is None:
            stack = read_stack(self.stack_file)
            self.nats_url = stack.nats_url
            self.connection = self.connection or stack.connection
        self.connection = self.connection or "paper"
        self.subjects = Subjects(self.connection)
        errors: list[BaseException] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)
            log.debug("nats: %s", exc)

        try:
            self._nc = await nats.connect(
                self.nats_url, name=self.name, connect_timeout=self.connect_timeout, max_reconnect_attempts=3,
                reconnect_time_wait=0.5, error_cb=on_error, allow_reconnect=True,
                **({"inbox_prefix": self.inbox_prefix} if self.inbox_prefix else {}),
            )
        except (nats.errors.NoServersError, OSError, TimeoutError, nats.errors.Error) as exc:
            cause = errors[-1] if errors else exc
            raise StackUnavailable(f"cannot reach NATS at {self.nats_url} ({type(cause).__name__}: {cause}); "
                                   "is the stack running (`make run`)?") from None
        return self

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            await nc.drain()

    async def __aenter__(self) -> IbkrClient:
        return await self.connect()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def nats(self) -> Client:
        """The nats-py connection (after `connect()`)."""
        if self._nc is None:
            raise RuntimeError("IbkrClient is not connected: use `async with IbkrClient(...)` or `await connect()`")
        return self._nc

    # ---- requests ----------------------------------------------------------------------------------

    async def request(self, command: str, body: BaseModel | dict[str, Any], *, timeout: float | None = None) -> Any:
        """Send one public command (`orders.submit`, ...) and return the reply's `result` (JSON).

        Raises the exception of the reply's error code, `NoReply` after `timeout` seconds, `ServiceNotRunning`
        when nobody serves the subject.
        """
        subjects = self.subjects or Subjects(self.connection or "paper")
        return await self._send(command, subjects.command(command), COMMAND_TABLE[command].service, body,
                                timeout)

    async def admin_request(self, command: str, body: BaseModel | dict[str, Any], *,
                            timeout: float | None = None) -> Any:
        """Send one registry command (`connections.create`, ... under `ibkr_admin.`); as `request()`."""
        return await self._send(command, AdminSubjects().command(command), ADMIN_COMMAND_TABLE[command].service,
                                body, timeout)

    async def admin_call(self, command: str, body: BaseModel | dict[str, Any], result: type[M], *,
                         timeout: float | None = None) -> M:
        """`admin_request()`, with the result read as `result`."""
        return _read_result(command, await self.admin_request(command, body, timeout=timeout), result)

    async def _send(self, command: str, subject: str, service: str, body: BaseModel | dict[str, Any],
                    timeout: float | None) -> Any:
        nc = self.nats
        if isinstance(body, BaseModel):
            data = body.model_dump_json(exclude_none=True).encode()
        else:
            data = json.dumps(body).encode()
        wait = timeout if timeout is not None else self.timeout
        try:
            message = await nc.request(subject, data, timeout=wait)
        except nats.errors.NoRespondersError:
            raise ServiceNotRunning(f"nobody serves {command} ({subject}): is {service} running?") from None
        except TimeoutError:  # nats-py raises its own or asyncio's
            raise NoReply(f"no answer to {command} from {service} within {wait:g} s; the request may still be acted "
                          "on (orders: look it up by client_order_id)") from None
        except nats.errors.ConnectionClosedError:
            raise StackUnavailable(f"the connection to NATS at {self.nats_url} is closed") from None
        return _result_of(command, message.data)

    async def call(self, command: str, body: BaseModel | dict[str, Any], result: type[M], *,
                   timeout: float | None = None) -> M:
        """`request()`, with the result read as `result`."""
        return _read_result(command, await self.request(command, body, timeout=timeout), result)

    async def service_status(self, service: str, *, timeout: float | None = None) -> ServiceStatus:
        """`status.<service>`: the service's version, start time and a few facts."""
        return await self.call(f"status.{service}", {}, ServiceStatus, timeout=timeout)

    async def services(self, *, timeout: float = 2.0) -> dict[str, ServiceStatus | IbkrError]:
        """Every service's status, asked at once; a service that does not answer maps to its error."""
        async def one(service: str) -> ServiceStatus | IbkrError:
            try:
                return await self.service_status(service, timeout=timeout)
            except IbkrError as exc:
                return exc

        answers = await asyncio.gather(*(one(s) for s in SERVICES))
        return dict(zip(SERVICES, answers, strict=True))

    # ---- events ------------------------------------------------------------------------------------

    def events(
        self,
        types: Sequence[str] | str | None = None,
        account: str | None = None,
        durable: str | None = None,
        *,
        start: Literal["new", "all", "last"] | datetime = "new",
        stream: str | None = None,
        idle_timeout: float | None = None,
    ) -> EventStream:
        """Events of this connection from the JetStream stream, as an async iterator of `EventEnvelope`.

        - `types`: event types (`orders.filled`) or areas (`orders`); None for all.
        - `account`: only this account's events.
        - `durable`: a consumer name kept by the server, so a restarted program goes on where it stopped
          (each event is acknowledged once the next one is asked for, or when the `async with` block ends
          without an error). Without it the consumer is ephemeral.
        - `start`: where a new consumer begins: `new` (from now), `all`, `last`, or a time.
        - `idle_timeout`: end the iteration after this many seconds without an event (default: never).
        """
        return EventStream(self, types=types, account=account, durable=durable, start=start, stream=stream,
                           idle_timeout=idle_timeout)


def _read_result(command: str, raw: Any, result: type[M]) -> M:
    try:
        return result.model_validate(raw)
    except ValidationError as exc:
        raise InternalError(f"{command} answered a result this client cannot read: {exc.errors()[0]['msg']}",
                            details={"result": raw}) from None


def _result_of(command: str, data: bytes) -> Any:
    try:
        reply = json.loads(data)
    except ValueError:
        raise InternalError(f"{command} answered with invalid JSON") from None
    if not isinstance(reply, dict) or "ok" not in reply:
        raise InternalError(f"{command} answered without the reply shape", details={"reply": reply})
    if reply["ok"]:
        return reply.get("result")
    try:
        body = ErrorBody.model_validate(reply.get("error") or {})
    except ValidationError:
        raise InternalError(f"{command} answered an error this client cannot read", details={"reply": reply}) from None
    raise error_from_reply(body)
