"""The public subject catalogue: every subject a client may use is built here.

Commands are verbs under `ibkr.<conn>.`; events are past tense under `ibkr.<conn>.events.`. The
internal `bridge.*` subjects of the gateway-bridge are not part of the contract (libs/common adds them).
"""

from __future__ import annotations

import re
from typing import Final, Self

ROOT: Final = "ibkr"
CONNECTION_PATTERN: Final = re.compile(r"^[a-z0-9-]{1,32}$")
TOKEN_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

SESSION_EVENTS: Final = (
    "authenticated", "unauthenticated", "competing", "tickled", "expiring", "expired",
    "maintenance_started", "maintenance_ended", "gateway_down", "gateway_up", "logged_out",
)
POSITION_EVENTS: Final = ("opened", "changed", "closed")
ORDER_EVENTS: Final = ("submitted", "status_changed", "filled", "cancelled", "rejected", "resolved")
COMPLIANCE_EVENTS: Final = ("allowed", "warned", "blocked")
TRADING_EVENTS: Final = ("halted", "resumed")
SYNC_EVENTS: Final = ("problem", "completed")
ACCOUNT_EVENTS: Final = ("updated",)
#: A connection's lifecycle in the registry (`ibkr_contract.connections`).
CONNECTION_EVENTS: Final = ("registered", "updated", "verified", "enabled", "disabled", "removed")

#: Event types whose subject carries the account id as a token after the area.
ACCOUNT_SCOPED_AREAS: Final = frozenset({"account", "positions", "orders"})

EVENT_TYPES: Final = frozenset(
    [f"session.{k}" for k in SESSION_EVENTS]
    + [f"positions.{k}" for k in POSITION_EVENTS]
    + [f"orders.{k}" for k in ORDER_EVENTS]
    + [f"compliance.{k}" for k in COMPLIANCE_EVENTS]
    + [f"trading.{k}" for k in TRADING_EVENTS]
    + [f"sync.{k}" for k in SYNC_EVENTS]
    + [f"account.{k}" for k in ACCOUNT_EVENTS]
    + [f"connection.{k}" for k in CONNECTION_EVENTS]
    + ["gateway.call"]
)
#: The first part of every event type.
EVENT_AREAS: Final = frozenset(t.split(".", 1)[0] for t in EVENT_TYPES)

#: The JetStream stream that holds every event (`ibkr.*.events.>`), unless a deployment names it otherwise.
EVENTS_STREAM: Final = "IBKR_EVENTS"

#: The services of the stack; each answers `ibkr.<conn>.status.<service>` (`ServiceStatus`).
SERVICES: Final = ("gateway-bridge", "session-keeper", "sync-worker", "compliance", "audit")


def _check_connection(conn: str) -> str:
    if not CONNECTION_PATTERN.match(conn):
        raise ValueError(f"connection id {conn!r} must match [a-z0-9-]{{1,32}}")
    return conn


def _check_token(value: str, what: str) -> str:
    if not TOKEN_PATTERN.match(value):
        raise ValueError(f"{what} {value!r} is not a single subject token")
    return value


#: The `<conn>` token of `Subjects.every_connection()`: a wildcard over connections, never a connection id.
ANY_CONNECTION: Final = "*"


class Subjects:
    """The public subjects of one connection (`ibkr.<conn>`)."""

    def __init__(self, conn: str) -> None:
        self.conn = _check_connection(conn)
        self.root = f"{ROOT}.{conn}"

    @classmethod
    def every_connection(cls) -> Self:
        """The same subjects over every connection at once (`ibkr.*.orders.submit`, `ibkr.*.events.orders.>`):
        what a service that serves every connection subscribes to; its handlers learn each message's connection
        from the subject it came on (`ibkr_common.connections.connection_of_subject`). Subscribe only: nothing
        is published to a wildcard."""
        subjects = cls.__new__(cls)
        subjects.conn = ANY_CONNECTION
        subjects.root = f"{ROOT}.{ANY_CONNECTION}"
        return subjects

    @property
    def every(self) -> bool:
        """Whether these are the wildcard subjects of `every_connection()`."""
        return self.conn == ANY_CONNECTION

    def _cmd(self, name: str) -> str:
        return f"{self.root}.{name}"

    def command(self, name: str) -> str:
        """The subject of a public command by its name under the connection (`orders.submit`)."""
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}")
        return self._cmd(name)

    # commands served by compliance
    @property
    def orders_submit(self) -> str:
        return self._cmd("orders.submit")

    @property
    def orders_check(self) -> str:
        return self._cmd("orders.check")

    @property
    def orders_confirm(self) -> str:
        return self._cmd("orders.confirm")

    @property
    def orders_cancel(self) -> str:
        return self._cmd("orders.cancel")

    @property
    def orders_modify(self) -> str:
        return self._cmd("orders.modify")

    @property
    def compliance_acknowledge(self) -> str:
        return self._cmd("compliance.acknowledge")

    @property
    def compliance_status(self) -> str:
        return self._cmd("compliance.status")

    @property
    def trading_halt(self) -> str:
        return self._cmd("trading.halt")

    @property
    def trading_resume(self) -> str:
        return self._cmd("trading.resume")

    # commands served by sync-worker
    @property
    def orders_get(self) -> str:
        return self._cmd("orders.get")

    @property
    def positions_get(self) -> str:
        return self._cmd("positions.get")

    @property
    def positions_close(self) -> str:
        return self._cmd("positions.close")

    @property
    def positions_exercise(self) -> str:
        return self._cmd("positions.exercise")

    @property
    def account_get(self) -> str:
        return self._cmd("account.get")

    @property
    def sync_trigger(self) -> str:
        return self._cmd("sync.trigger")

    # commands served by gateway-bridge
    @property
    def contracts_search(self) -> str:
        return self._cmd("contracts.search")

    @property
    def contracts_option_chain(self) -> str:
        return self._cmd("contracts.option_chain")

    # commands served by session-keeper
    @property
    def session_status(self) -> str:
        return self._cmd("session.status")

    @property
    def session_logout(self) -> str:
        return self._cmd("session.logout")

    @property
    def session_reauthenticate(self) -> str:
        return self._cmd("session.reauthenticate")

    # commands served by audit
    @property
    def audit_query(self) -> str:
        return self._cmd("audit.query")

    @property
    def audit_verify(self) -> str:
        return self._cmd("audit.verify")

    # every service
    def service_status(self, service: str) -> str:
        """`ibkr.<conn>.status.<service>`: the service answers that it runs, with a few facts (`ServiceStatus`)."""
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}")
        return self._cmd(f"status.{service}")

    # events
    @property
    def events_all(self) -> str:
        return f"{self.root}.events.>"

    def events_of(self, area: str) -> str:
        """Every event of one area (`orders`, `session`, ...): `<root>.events.<area>.>`."""
        if area not in EVENT_AREAS:
            raise ValueError(f"unknown event area {area!r}")
        return f"{self.root}.events.{area}.>"

    def event(self, event_type: str, account_id: str | None = None) -> str:
        """Subject of an event of `event_type` (e.g. "positions.opened"), with the account when scoped."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        area, kind = event_type.split(".", 1)
        if area in ACCOUNT_SCOPED_AREAS:
            if not account_id:
                raise ValueError(f"event {event_type!r} needs an account id")
            return f"{self.root}.events.{area}.{_check_token(account_id, 'account id')}.{kind}"
        return f"{self.root}.events.{event_type}"

    def event_pattern(self, area: str) -> str:
        """Wildcard over every event of an area (`session`, `positions`, ...) of this connection."""
        return f"{self.root}.events.{area}.>"

    def event_filter(self, selector: str | None = None, account_id: str | None = None) -> str:
        """A subject filter over events: `selector` is an event type (`orders.filled`), an area (`orders`) or
        None for every event; `account_id` narrows account-scoped areas to one account (other events are
        not narrowed: their subjects carry no account)."""
        account = _check_token(account_id, "account id") if account_id else "*"
        if selector is None:
            return self.events_all
        if selector in EVENT_AREAS:
            if selector in ACCOUNT_SCOPED_AREAS and account_id:
                return f"{self.root}.events.{selector}.{account}.>"
            return self.events_of(selector)
        if selector not in EVENT_TYPES:
            raise ValueError(f"unknown event type or area {selector!r}")
        area, kind = selector.split(".", 1)
        if area in ACCOUNT_SCOPED_AREAS:
            return f"{self.root}.events.{area}.{account}.{kind}"
        return self.event(selector)


#: Every public command, by its name under `ibkr.<conn>.`.
COMMANDS: Final = (
    "orders.submit", "orders.check", "orders.confirm", "orders.cancel", "orders.modify",
    "compliance.acknowledge", "compliance.status", "trading.halt", "trading.resume",
    "orders.get", "positions.get", "positions.close", "positions.exercise", "account.get", "sync.trigger",
    "contracts.search", "contracts.option_chain",
    "session.status", "session.logout", "session.reauthenticate",
    "audit.query", "audit.verify",
    *(f"status.{service}" for service in SERVICES),
)



def all_connections_events() -> str:
    """Events of every connection: what the IBKR_EVENTS stream covers."""
    return f"{ROOT}.*.events.>"


def event_type_of(subject: str) -> tuple[str, str, str | None]:
    """Split an event subject into (conn, event type, account id or None)."""
    parts = subject.split(".")
    if len(parts) < 5 or parts[0] != ROOT or parts[2] != "events":
        raise ValueError(f"not an event subject: {subject!r}")
    conn, area = parts[1], parts[3]
    if area in ACCOUNT_SCOPED_AREAS and len(parts) == 6:
        return conn, f"{area}.{parts[5]}", parts[4]
    return conn, ".".join(parts[3:]), None
