"""`IBKR_SERVE_CONNECTIONS`: the connections a ConnectionDirectory keeps, and the wildcard command subjects."""

from __future__ import annotations

import asyncio

import pytest
from faststream.nats import NatsBroker

from ibkr_common.connections import ConnectionDirectory
from ibkr_common.settings import CommonSettings, SettingsError, load_settings
from ibkr_common.subjects import Subjects
from ibkr_testkit.connections import announce_connection, connection_view


def test_a_bad_pattern_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("IBKR_SERVE_CONNECTIONS", "paper-(")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, _env_file=None)
    assert "IBKR_SERVE_CONNECTIONS" in info.value.message


def test_the_wildcard_of_a_command_covers_every_connection():
    assert Subjects.every_connection().command("session.status") == "ibkr.*.session.status"
    assert Subjects.every_connection().command("status.sync-worker") == "ibkr.*.status.sync-worker"
    with pytest.raises(ValueError):
        Subjects.every_connection().command("session.nothing")


@pytest.mark.connected
async def test_the_directory_keeps_only_the_connections_it_serves(nats_url, nats_client, run_names):
    ours, theirs = f"{run_names.conn}-dfa", f"{run_names.conn}-dfb"
    stream = f"{run_names.stream}_DF"
    js = nats_client.jetstream()
    await js.add_stream(name=stream, subjects=[f"ibkr.{ours}.events.>", f"ibkr.{theirs}.events.>"])
    settings = CommonSettings(nats_url=nats_url, connection=f"{run_names.conn}-dfboot",
                              serve_connections=f"{run_names.conn}-dfa")
    broker = NatsBroker(nats_url)
    directory = ConnectionDirectory(broker, settings)
    changes: list[tuple[str | None, str | None]] = []

    async def heard(before, after):
        changes.append((before.id if before else None, after.id if after else None))

    directory.on_change(heard)
    directory.subscribe()
    await broker.start()
    try:
        for conn in (theirs, ours):
            await announce_connection(nats_client, connection_view(conn, user_id="bob",
                                                                   gateway_url="https://127.0.0.1:5999"))
        deadline = asyncio.get_running_loop().time() + 5
        while ours not in directory and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the other event, had it been kept, would be in by now
        assert ours in directory and theirs not in directory
        assert directory.serves(settings.connection) and not directory.serves(theirs)
        assert changes == [(None, ours)]
        await announce_connection(nats_client, connection_view(ours, user_id="bob",
                                                               gateway_url="https://127.0.0.1:5999"), kind="removed")
        while ours in directory and asyncio.get_running_loop().time() < deadline + 5:
            await asyncio.sleep(0.05)
        assert changes == [(None, ours), (ours, None)]
        assert [c.id for c in directory] == [settings.connection]
    finally:
        await broker.stop()
        await js.delete_stream(stream)


@pytest.mark.connected
async def test_the_directory_applies_a_connection_event_without_answering_it(nats_url, nats_client, run_names):
    """A JetStream publish is a request whose one answer must be the stream's ack: the directory's subscriber
    (core NATS, every instance of every service) must apply the event and answer nothing."""
    from datetime import UTC, datetime

    import nats.errors

    from ibkr_contract.connections import ConnectionPayload
    from ibkr_contract.envelope import new_event

    conn = f"{run_names.conn}-dfr"
    settings = CommonSettings(nats_url=nats_url, connection=f"{run_names.conn}-dfboot", serve_connections=conn)
    broker = NatsBroker(nats_url)
    directory = ConnectionDirectory(broker, settings)
    directory.subscribe()
    view = connection_view(conn, user_id="bob", gateway_url="https://127.0.0.1:5999")
    envelope = new_event("connection.registered", conn=conn, environment="paper", source="registry",
                         occurred_at=datetime.now(UTC), user_id="bob",
                         payload=ConnectionPayload(connection=view).model_dump(mode="json"))
    await broker.start()
    try:
        for _ in range(50):  # until the server knows the broker's subscription ("no responders" before that)
            try:
                await nats_client.request(Subjects(conn).event("connection.registered"), envelope.to_bytes(),
                                          timeout=1.0)
            except nats.errors.NoRespondersError:
                await asyncio.sleep(0.05)
                continue
            except nats.errors.TimeoutError:
                break
            pytest.fail("the directory answered a connection event")
        else:
            pytest.fail("the directory never subscribed to connection events")
        assert conn in directory  # heard and applied, just not answered
    finally:
        await broker.stop()
