"""Fixtures of the audit tests: per-test connection, stream and database; the app in-process."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from faststream import FastStream, TestApp

from ibkr_audit.app import build_app
from ibkr_audit.settings import AuditSettings

_counter = itertools.count(1)


@dataclass
class Names:
    """Names of one test: its own connection, stream and consumer."""

    conn: str
    stream: str
    subjects: str
    consumer: str

    def env(self, nats_url: str, database_url: str, **extra: str) -> dict[str, str]:
        from ibkr_testkit.processes import service_env

        return service_env(nats_url=nats_url, database_url=database_url, conn=self.conn, stream=self.stream,
                           stream_subjects=self.subjects, IBKR_AUDIT_CONSUMER=self.consumer, **extra)


@pytest.fixture
def names(run_names: Any) -> Names:
    """A connection, stream and consumer for this test alone."""
    n = next(_counter)
    conn = f"{run_names.conn}-{n}"
    return Names(conn=conn, stream=f"{run_names.stream}_{n}", subjects=f"ibkr.{conn}.events.>",
                 consumer=f"audit-{n}")


@pytest.fixture
def fresh_pg(make_database: Callable[[str], str]) -> str:
    """A fresh migrated PostgreSQL database for one test (app-role URL)."""
    return make_database(f"a{next(_counter)}")


def settings_for(names: Names, nats_url: str, database_url: str, **extra: Any) -> AuditSettings:
    """Settings of an in-process audit app for this test."""
    return AuditSettings(
        nats_url=nats_url, database_url=database_url, connection=names.conn, events_stream=names.stream,
        events_subjects=names.subjects, audit_consumer=names.consumer, **extra,
    )


@pytest.fixture
def start_audit(names: Names, nats_url: str) -> Callable[..., Any]:
    """Factory: an async context manager running the audit app in-process on a database."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(database_url: str, **extra: Any) -> AsyncIterator[FastStream]:
        app = build_app(settings_for(names, nats_url, database_url, **extra))
        async with TestApp(app) as running:
            yield running

    return run
