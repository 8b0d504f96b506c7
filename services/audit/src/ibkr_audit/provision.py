"""`python -m ibkr_audit.provision`: create the events stream and audit's durable consumer, then exit.

The provisioning step of a production deployment (docker compose's `provision` service, `make run-prod`).
It runs once before the services, under a NATS user of its own that may create and update the stream
and the audit consumer and nothing else; the services then run with `IBKR_PROVISION_STREAMS=false`,
whose users may not create, change, purge or delete them. Running it again is harmless: an existing
stream or consumer is brought to the configuration, nothing is removed.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import nats
from nats.js.api import ConsumerConfig

from ibkr_audit.consumer import durable_config
from ibkr_audit.settings import AuditSettings
from ibkr_common.logs import setup_logging
from ibkr_common.settings import SettingsError, exit_on_bad_settings
from ibkr_common.streams import ensure_stream, events_stream_config

log = logging.getLogger("ibkr_audit.provision")
CONNECT_TIMEOUT_S = 30.0


def audit_consumer_config(settings: AuditSettings) -> ConsumerConfig:
    """Audit's durable consumer with the settings the audit service runs with."""
    return durable_config(settings.audit_consumer, settings.audit_ack_wait_s,
                          max(settings.audit_max_ack_pending, settings.audit_batch_max))


async def provision(settings: AuditSettings) -> None:
    """Create or update the events stream and the audit consumer on the server at NATS_URL."""
    nc = await nats.connect(
        settings.nats_url, name=f"ibkr-provision-{settings.connection}", inbox_prefix=settings.nats_inbox_prefix,
        connect_timeout=5, max_reconnect_attempts=int(CONNECT_TIMEOUT_S), reconnect_time_wait=1,
    )
    try:
        js = nc.jetstream(timeout=10)
        subjects = [s.strip() for s in settings.events_subjects.split(",") if s.strip()]
        stream = await ensure_stream(js, events_stream_config(settings.events_stream, subjects))
        log.info("stream %s ready (%s)", settings.events_stream, ", ".join(stream.config.subjects or []))
        consumer = await js.add_consumer(settings.events_stream, audit_consumer_config(settings))
        log.info("consumer %s on %s ready (%d pending)", consumer.name, settings.events_stream,
                 consumer.num_pending or 0)
    finally:
        await nc.close()


def main() -> int:
    """Entry point; exits 0 once both exist, 1 when NATS refused or failed, 2 on bad settings."""
    try:
        settings = exit_on_bad_settings(AuditSettings)
    except SettingsError:
        return 2
    setup_logging("provision", settings.log_level)
    try:
        asyncio.run(provision(settings))
    except Exception as exc:
        log.error("provisioning failed: %s: %s", type(exc).__name__, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
