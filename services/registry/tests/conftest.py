"""Fixtures of the registry tests: per-test connection ids and stream, the registry in-process or as a process,
and a helper to call its commands over real NATS."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from faststream import FastStream, TestApp
from nats.errors import NoRespondersError

from ibkr_common.clock import Clock
from ibkr_common.subjects import Subjects
from ibkr_contract.connections import AdminSubjects
from ibkr_registry.app import build_app
from ibkr_registry.settings import RegistrySettings

_counter = itertools.count(1)
#: Two passphrases (32+ characters) standing for the operator's keys.
KEY_OLD = "registry-test-key-old-0123456789abcdef"
KEY_NEW = "registry-test-key-new-fedcba9876543210"
OWNER = "alice"
OTHER = "bob"
USERNAME = "alicetrades42"
CPSIM_ACCOUNT = "DU1234567"


@dataclass
class Names:
    """The bootstrap connection, two registry connections and a stream for one test alone."""

    boot: str
    conn: str
    conn2: str
    stream: str

    @property
    def subjects(self) -> str:
        return ",".join(f"ibkr.{c}.events.>" for c in (self.boot, self.conn, self.conn2))


@pytest.fixture
def names(run_names: Any) -> Names:
    n = next(_counter)
    base = run_names.conn
    return Names(boot=f"{base}-rb{n}", conn=f"{base}-rn{n}", conn2=f"{base}-rm{n}", stream=f"{run_names.stream}_R{n}")


def registry_settings(names: Names, nats_url: str, database_url: str, **extra: Any) -> RegistrySettings:
    values: dict[str, Any] = {"encryption_key": KEY_NEW, "user_id": "operator", "connection": names.boot, **extra}
    return RegistrySettings(nats_url=nats_url, database_url=database_url, events_stream=names.stream,
                            events_subjects=names.subjects, **values)


@pytest.fixture
def start_registry(names: Names, nats_url: str) -> Callable[..., Any]:
    """Factory: the registry in-process on a database (on `clock` when given)."""

    @asynccontextmanager
    async def run(database_url: str, *, clock: Clock | None = None, **extra: Any) -> AsyncIterator[FastStream]:
        async with TestApp(build_app(registry_settings(names, nats_url, database_url, **extra), clock=clock)) as app:
            yield app

    return run


async def admin(nc: Any, command: str, body: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Request `ibkr_admin.<command>` and decode the reply."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg = await nc.request(AdminSubjects().command(command), data, timeout=timeout)
    return json.loads(msg.data)  # type: ignore[no-any-return]


def gateway_of(url: str) -> dict[str, Any]:
    """`GatewaySettings` JSON of a gateway URL (`https://127.0.0.1:5001`)."""
    scheme, rest = url.split("://", 1)
    host, port = rest.rstrip("/").rsplit(":", 1)
    return {"host": host, "port": int(port), "ssl": scheme == "https"}


def create_body(names: Names, gateway_url: str = "https://127.0.0.1:5999", *, conn: str | None = None,
                user_id: str = OWNER, environment: str = "paper", username: str = USERNAME) -> dict[str, Any]:
    return {"user_id": user_id, "connection": conn or names.conn, "environment": environment,
            "gateway": gateway_of(gateway_url), "username": username}


@dataclass
class Events:
    """The registry's connection events of the test's connections, as published (core NATS)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def types(self, conn: str | None = None) -> list[str]:
        return [e["type"] for e in self.items if conn is None or e["conn"] == conn]

    async def wait_for(self, event_type: str, conn: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for e in self.items:
                if e["type"] == event_type and e["conn"] == conn:
                    return e
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {event_type} on {conn} in {self.types()}")


@pytest.fixture
async def events(nats_client: Any, names: Names) -> AsyncIterator[Events]:
    collected = Events()

    async def on_msg(msg: Any) -> None:
        collected.raw.append(msg.data)
        collected.items.append(json.loads(msg.data))

    subs = [await nats_client.subscribe(f"ibkr.{c}.events.connection.>", cb=on_msg)
            for c in (names.boot, names.conn, names.conn2)]
    yield collected
    for sub in subs:
        await sub.unsubscribe()


def serves_the_tests(names: Names) -> str:
    """`IBKR_SERVE_CONNECTIONS` of a service serving the test's connections (its bootstrap one and the two the
    registry may register), and no other run's."""
    return "|".join(re.escape(c) for c in (names.boot, names.conn, names.conn2))


async def until_served(nc: Any, conn: str, service: str, timeout: float = 15.0) -> dict[str, Any]:
    """Ask `ibkr.<conn>.status.<service>` until the service answers for `conn` (it learns a connection from the
    registry's `connection.registered` event, shortly after the command that registered it answered)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            msg = await nc.request(Subjects(conn).service_status(service), b"{}", timeout=5)
            reply: dict[str, Any] = json.loads(msg.data)
        except NoRespondersError:
            reply = {"ok": False, "error": {"code": "NO_RESPONDERS"}}
        if reply["ok"] or asyncio.get_running_loop().time() > deadline:
            return reply
        await asyncio.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgres"])
def any_database(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh migrated database: SQLite, or PostgreSQL as a role under RLS."""
    if request.param == "sqlite":
        from ibkr_common.db.migrate import upgrade

        url = f"sqlite+aiosqlite:///{tmp_path}/registry.db"
        upgrade(url)
        return url
    make_database = request.getfixturevalue("make_database")
    return str(make_database(f"reg{next(_counter)}"))
