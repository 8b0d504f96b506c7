"""How a service is built and run: settings once, a broker, a ready line, clean signals."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from faststream import FastStream
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext

from ibkr_common.logs import mask_urls, setup_logging
from ibkr_common.loop import run as run_loop
from ibkr_common.ops.tracing import configure_tracing
from ibkr_common.settings import (
    CommonSettings,
    DatabaseServiceSettings,
    SettingsError,
    exit_on_bad_settings,
    vite_secret_warnings,
)
from ibkr_common.streams import check_stream, ensure_stream, events_stream_config

S = TypeVar("S", bound=CommonSettings)
log = logging.getLogger("ibkr_common.service")


def make_broker(settings: CommonSettings, service: str, **options: Any) -> NatsBroker:
    """A NATS broker that reconnects forever and does not log every message."""
    return NatsBroker(
        settings.nats_url,
        name=f"ibkr-{service}-{settings.connection}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        graceful_timeout=10.0,
        logger=logging.getLogger(f"ibkr_{service.replace('-', '_')}.broker"),
        log_level=logging.DEBUG,
        inbox_prefix=settings.nats_inbox_prefix,
        **options,
    )


def jetstream_of(broker: NatsBroker) -> JetStreamContext:
    """The JetStream context of a connected broker (nats-py's public `Client.jetstream()`)."""
    return broker.connection.jetstream()


def nats_client_of(broker: NatsBroker) -> Client:
    """The nats-py client of a connected broker (FastStream's public `NatsBroker.connection`)."""
    return broker.connection


async def ensure_events_stream(broker: NatsBroker, settings: CommonSettings) -> None:
    """Make sure the events stream exists with the configured name and subjects.

    With `IBKR_PROVISION_STREAMS=false` (production) the service only checks, so its NATS user needs no
    right to create or change streams: the provisioning step (`python -m ibkr_audit.provision`) made it.
    """
    subjects = [s.strip() for s in settings.events_subjects.split(",") if s.strip()]
    config = events_stream_config(settings.events_stream, subjects)
    if settings.provision_streams:
        await ensure_stream(jetstream_of(broker), config)
    else:
        await check_stream(jetstream_of(broker), config)


def freeze_startup_heap() -> None:
    """Collect once, then move every object alive after start-up (modules, settings, the app) out of
    the collector's sight: later collections walk only what requests and events allocate, which keeps
    per-message cost from growing with the size of the imported libraries."""
    gc.collect()
    gc.freeze()


def run_service(service: str, settings_cls: type[S], build_app: Callable[[S], FastStream]) -> None:
    """Entry point of a service: exits 2 on bad settings, logs `<service> ready` once serving.

    Logs are JSON lines (IBKR_LOG_FORMAT) with every secret of the settings masked; traces are exported
    when an OTLP endpoint is configured; an error that ends the service is logged (masked), exit code 1."""
    try:
        settings = exit_on_bad_settings(settings_cls)
    except SettingsError as exc:
        raise SystemExit(2) from exc
    setup_logging(service, settings.log_level, connection=settings.connection, log_format=settings.log_format,
                  secrets=settings.secret_values())
    for warning in vite_secret_warnings(settings):
        log.warning("%s", warning)
    provider = configure_tracing(settings, service)
    app = build_app(settings)

    @app.after_startup
    async def _announce_ready() -> None:
        freeze_startup_heap()
        log.info("%s ready (connection %s, nats %s)", service, settings.connection, mask_urls(settings.nats_url))

    try:
        run_loop(app.run())
    except KeyboardInterrupt:
        pass
    except Exception:
        log.exception("%s stopped on an error", service)
        raise SystemExit(1) from None
    finally:
        if provider is not None:
            provider.shutdown()  # exports the spans still buffered


def document_events(broker: NatsBroker, settings: CommonSettings, event_types: list[str], service: str) -> None:
    """Declare the events a service publishes, so its AsyncAPI document lists every event subject.

    Account-scoped subjects are documented with `*` in place of the account id.
    """
    from ibkr_common.envelope import EventEnvelope
    from ibkr_common.subjects import ACCOUNT_SCOPED_AREAS, Subjects

    subjects = Subjects(settings.connection)
    for event_type in event_types:
        area = event_type.split(".", 1)[0]
        if area in ACCOUNT_SCOPED_AREAS:
            subject = subjects.event(event_type, "ACCOUNT").replace(".ACCOUNT.", ".*.")
        else:
            subject = subjects.event(event_type)
        broker.publisher(
            subject,
            schema=EventEnvelope,
            title=f"{event_type}:Event",
            description=f"`{event_type}` event published by {service} on the {settings.events_stream} stream.",
        )


async def migrate_at_start(settings: DatabaseServiceSettings) -> None:
    """Run the migrations at start: always on SQLite (the embedded default), else when configured."""
    from ibkr_common.db.engine import is_sqlite
    from ibkr_common.db.migrate import upgrade

    if is_sqlite(settings.database_url) or settings.migrate_on_start:
        await asyncio.to_thread(upgrade, settings.database_url)
