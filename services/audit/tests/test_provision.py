"""`python -m ibkr_audit.provision` creates the stream and audit's consumer; a service that may not provision
only finds them."""

from __future__ import annotations

from typing import Any

import nats
import pytest

from ibkr_audit.consumer import AuditConsumer
from ibkr_audit.provision import audit_consumer_config, provision
from ibkr_audit.settings import AuditSettings
from ibkr_audit.store import AuditStore
from ibkr_common.db.engine import make_engine

pytestmark = pytest.mark.connected


async def test_provisioning_creates_the_stream_and_the_consumer_and_may_run_again(nats_url: str, names: Any) -> None:
    settings = AuditSettings(nats_url=nats_url, connection=names.conn, events_stream=names.stream,
                             events_subjects=names.subjects, audit_consumer=names.consumer, audit_ack_wait_s=30)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        consumer = AuditConsumer(nc, AuditStore(engine), stream=names.stream, durable=names.consumer, create=False)
        with pytest.raises(Exception, match=r"not found|ibkr_audit\.provision"):
            await consumer.start()  # nothing provisioned: the service does not create it
        await provision(settings)
        await provision(settings)  # a second run changes nothing
        stream = await js.stream_info(names.stream)
        assert stream.config.subjects == [names.subjects]
        info = await js.consumer_info(names.stream, names.consumer)
        assert info.config.ack_wait == 30
        assert info.config.durable_name == audit_consumer_config(settings).durable_name == names.consumer
        await consumer.start()  # provisioned: found and bound, without creating
        await consumer.stop()
    finally:
        await js.delete_stream(names.stream)
        await engine.dispose()
        await nc.close()
