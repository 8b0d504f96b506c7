import json

import pytest
from nats.js.api import StorageType

from ibkr_common.envelope import new_event
from ibkr_common.streams import ensure_stream, events_stream_config

pytestmark = pytest.mark.connected


async def test_stream_is_created_then_left_alone_and_deduplicates(nats_client, run_names):
    js = nats_client.jetstream()
    config = events_stream_config(run_names.stream + "_S", [f"ibkr.{run_names.conn}s.events.>"])
    info = await ensure_stream(js, config)
    again = await ensure_stream(js, config)
    assert info.config.storage == StorageType.FILE
    assert again.config.duplicate_window >= 120
    from datetime import UTC, datetime

    env = new_event("session.tickled", conn=f"{run_names.conn}s", environment="paper", source="test",
                    occurred_at=datetime.now(UTC))
    subject = f"ibkr.{run_names.conn}s.events.session.tickled"
    for _ in range(2):
        await js.publish(subject, env.to_bytes(), headers={"Nats-Msg-Id": str(env.event_id)})
    state = (await js.stream_info(config.name)).state
    assert state.messages == 1
    msg = await js.get_msg(config.name, state.last_seq)
    assert json.loads(msg.data)["event_id"] == str(env.event_id)
    await js.delete_stream(config.name)


async def test_a_stream_with_the_wrong_storage_is_reported_not_silently_accepted(nats_client, run_names, caplog):
    js = nats_client.jetstream()
    config = events_stream_config(run_names.stream + "_M", [f"ibkr.{run_names.conn}m.events.>"])
    memory = events_stream_config(run_names.stream + "_M", [f"ibkr.{run_names.conn}m.events.>"])
    memory.storage = StorageType.MEMORY
    await js.add_stream(memory)
    try:
        with caplog.at_level("ERROR", logger="ibkr_common.streams"):
            info = await ensure_stream(js, config)
    finally:
        await js.delete_stream(config.name)
    assert info.config.storage == StorageType.MEMORY
    assert any("storage memory, not file" in r.getMessage() for r in caplog.records), caplog.text


async def test_a_service_that_may_not_provision_only_checks_the_stream(nats_client, run_names, caplog):
    from faststream.nats import NatsBroker

    from ibkr_common.service import ensure_events_stream
    from ibkr_common.settings import CommonSettings
    from ibkr_common.streams import StreamMissing

    name = run_names.stream + "_P"
    subjects = f"ibkr.{run_names.conn}p.events.>"
    url = nats_client.connected_url.geturl()
    settings = CommonSettings(nats_url=url, events_stream=name, events_subjects=subjects, provision_streams=False)
    broker = NatsBroker(url)
    await broker.connect()
    js = nats_client.jetstream()
    try:
        with pytest.raises(StreamMissing, match=r"ibkr_audit\.provision"):
            await ensure_events_stream(broker, settings)
        with pytest.raises(Exception, match="not found"):
            await js.stream_info(name)  # checking created nothing
        await js.add_stream(events_stream_config(name, [f"ibkr.{run_names.conn}q.events.>"]))
        with caplog.at_level("WARNING", logger="ibkr_common.streams"):
            await ensure_events_stream(broker, settings)
        assert "run the provisioning step" in caplog.text
        assert (await js.stream_info(name)).config.subjects == [f"ibkr.{run_names.conn}q.events.>"]  # unchanged
    finally:
        await broker.stop()
        try:
            await js.delete_stream(name)
        except Exception:
            pass
