"""The audit application: the event consumer plus the query/verify handlers."""

from __future__ import annotations

import logging

from faststream import FastStream
from nats.js.errors import NotFoundError

from ibkr_audit.anchor import StreamAnchor, read_anchor
from ibkr_audit.consumer import AuditConsumer
from ibkr_audit.handlers import build_router
from ibkr_audit.metrics import observe_audit, verifications
from ibkr_audit.settings import AuditSettings
from ibkr_audit.store import AuditStore
from ibkr_common.clock import Clock, SystemClock
from ibkr_common.connections import ConnectionDirectory
from ibkr_common.db.engine import make_engine
from ibkr_common.service import ensure_events_stream, make_broker, migrate_at_start
from ibkr_common.subjects import Subjects

log = logging.getLogger("ibkr_audit.app")


def build_app(settings: AuditSettings, *, clock: Clock | None = None) -> FastStream:
    """Build the audit service; nothing connects until the app starts."""
    broker = make_broker(settings, "audit")
    engine = make_engine(settings.database_url)
    store = AuditStore(engine, clock or SystemClock())
    holder: dict[str, AuditConsumer] = {}

    def redacted() -> int:
        consumer = holder.get("consumer")
        return consumer.stats.secrets_redacted if consumer else 0

    async def anchor() -> StreamAnchor | None:
        consumer = holder.get("consumer")
        if consumer is None:
            return None
        try:
            return await read_anchor(consumer.js, settings.events_stream, settings.audit_consumer)
        except Exception as exc:  # NATS away: verify still walks the chain, without the tail check
            log.warning("the consumer's stream position could not be read (%s); verifying without it", exc)
            return None

    verified = verifications(clock)
    directory = ConnectionDirectory(broker, settings)
    directory.subscribe()
    broker.include_router(build_router(Subjects(settings.connection), store, redacted, anchor, verified.record,
                                       directory=directory))
    app = FastStream(broker, logger=logging.getLogger("ibkr_audit.faststream"))

    @app.on_startup
    async def _migrate() -> None:
        await migrate_at_start(settings)
        try:
            seq, _ = await store.head()
        except Exception as exc:  # the database may come later; the writer waits for it
            log.warning("database not reachable at start (%s); the consumer will wait for it", exc)
            return
        store.known_last_seq = seq
        log.info("audit log at seq %d", seq)

    @app.after_startup
    async def _consume() -> None:
        await ensure_events_stream(broker, settings)
        await _check_tail()
        await directory.start()
        consumer = AuditConsumer(
            broker.connection,  # the broker's nats-py client (its public property)
            store,
            stream=settings.events_stream,
            durable=settings.audit_consumer,
            batch_max=settings.audit_batch_max,
            max_latency_s=settings.audit_max_latency_ms / 1000,
            ack_wait_s=settings.audit_ack_wait_s,
            max_ack_pending=settings.audit_max_ack_pending,
            retry_max_s=settings.audit_retry_max_s,
            create=settings.provision_streams,
        )
        await consumer.start()
        holder["consumer"] = consumer

    async def _check_tail() -> None:
        """Before consuming (nothing new is acknowledged yet): were rows removed while audit was away?"""
        try:
            found = await store.check_tail(
                await read_anchor(broker.connection.jetstream(), settings.events_stream, settings.audit_consumer)
            )
        except NotFoundError:
            return  # the first start: no consumer, nothing acknowledged yet
        except Exception as exc:
            log.warning("tail check at start not done (%s); verify checks the tail again", exc)
            return
        if found is not None:
            log.error("audit log tail check failed at row %d: %s", found[0], found[1])

    @app.on_shutdown
    async def _stop() -> None:
        await directory.stop()
        consumer = holder.pop("consumer", None)
        if consumer is not None:
            await consumer.stop()
            s = consumer.stats
            log.info("audit stopped: %d received, %d stored, %d duplicates, %d dead letters",
                     s.received, s.stored, s.duplicates, s.dead_letters)

    @app.after_shutdown
    async def _dispose() -> None:
        await engine.dispose()

    observe_audit(app, broker, settings, engine=engine, store=store, consumer=lambda: holder.get("consumer"),
                  verified=verified)
    app.directory = directory  # type: ignore[attr-defined]
    return app
