"""Faults against real processes: audit SIGKILLed mid-flow, PostgreSQL down for 30 s, NATS restarted.

After each: the number of stored events equals the number published, and `audit.verify` is ok.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy.engine import make_url

from ibkr_common.streams import ensure_stream, events_stream_config
from ibkr_common.subjects import Subjects
from ibkr_testkit.databases import DatabaseFactory
from ibkr_testkit.processes import ServiceProcess, start_service
from ibkr_testkit.servers import ManagedProcess, postgres_bindir, start_nats, start_postgres, wait_for_port

from .audit_helpers import event, publish, stored, wait_until

pytestmark = [pytest.mark.connected, pytest.mark.slow]

FAST_REDELIVERY = {"IBKR_AUDIT_ACK_WAIT_S": "3", "IBKR_AUDIT_RETRY_MAX_S": "1"}


class Flow:
    """Publishes events at a steady rate until stopped; counts those the stream acknowledged."""

    def __init__(self, js: Any, stream: str, conn: str, rate: float) -> None:
        self.js, self.stream, self.conn, self.interval = js, stream, conn, 1.0 / rate
        self.published: set[str] = set()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            e = event(self.conn, "session.tickled", payload={"n": len(self.published)})
            await publish(self.js, self.stream, e, retry_s=120)
            self.published.add(str(e.event_id))
            await asyncio.sleep(self.interval)

    def start(self) -> Flow:
        self._task = asyncio.create_task(self._run())
        return self

    async def at_least(self, count: int, timeout: float = 60) -> None:
        """Keep flowing until `count` events were published (the flow's pace depends on the machine's load)."""
        async def enough() -> bool:
            return len(self.published) >= count

        await wait_until(enough, timeout, f"{count} published events")

    async def stop(self) -> int:
        self._stop.set()
        assert self._task is not None
        await self._task
        return len(self.published)



async def stored_then_verified(nc: Any, conn: str, url: str, published: int, timeout: float = 60) -> dict[str, Any]:
    """Wait until every published event is stored, then verify through audit itself."""
    async def done() -> bool:
        return await stored(url) >= published

    await wait_until(done, timeout, f"{published} stored events")
    await asyncio.sleep(1.0)  # a late duplicate would show up now
    reply = await nc.request(Subjects(conn).audit_verify, b"{}", timeout=30)
    return json.loads(reply.data)


def assert_complete(verify: dict[str, Any], stored: int, published: int) -> None:
    assert stored == published, (stored, published)
    assert verify["ok"] is True and verify["result"]["ok"] is True, verify
    assert verify["result"]["events_checked"] == published


async def until_pending(js: Any, stream: str, durable: str, acked_floor: int, timeout: float = 30) -> Any:
    """Consumer info once every message up to `acked_floor` is acked and some others are delivered, unacked."""
    deadline = time.monotonic() + timeout
    while True:
        info = await js.consumer_info(stream, durable)
        if info.ack_floor.stream_seq >= acked_floor and (info.num_ack_pending or 0) > 0:
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"no unacknowledged messages above {acked_floor}: {info}")
        await asyncio.sleep(0.002)


async def test_sigkill_mid_batch_then_restart(names: Any, nats_url: str, fresh_pg: str) -> None:
    env = names.env(nats_url, fresh_pg, **FAST_REDELIVERY)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    audit = start_service("ibkr_audit", env)
    flow = Flow(js, names.stream, names.conn, rate=400).start()
    held_by_killed = 0  # highest stream seq delivered to an audit that was killed
    mid_batch_kills = 0
    try:
        for _ in range(3):
            await asyncio.sleep(0.5)
            # What the last killed audit held is redelivered (ack wait 3 s) and acked first, so that
            # whatever is unacked after this kill was delivered to this very process.
            await until_pending(js, names.stream, names.consumer, held_by_killed)
            audit.kill()
            assert audit.proc.returncode == -signal.SIGKILL
            after = await js.consumer_info(names.stream, names.consumer)
            if (after.num_ack_pending or 0) > 0:  # delivered to the dead process, never acked: mid-batch
                mid_batch_kills += 1
            held_by_killed = after.delivered.stream_seq
            await asyncio.sleep(0.5)
            audit = start_service("ibkr_audit", env)
        await asyncio.sleep(1.0)
        await flow.at_least(1200)
        published = await flow.stop()
        verify = await stored_then_verified(nc, names.conn, fresh_pg, published)
        assert_complete(verify, await stored(fresh_pg), published)
        print(f"kills with delivered, unacknowledged messages: {mid_batch_kills} of 3")
        assert mid_batch_kills >= 1, "no kill happened while messages were delivered and unacknowledged"
        assert published > 1000
    finally:
        audit.stop()
        await nc.close()


# --- PostgreSQL stopped and started again on the same port and data folder -------------------------


def _pg_port(server: ManagedProcess) -> int:
    return int(make_url(server.url).port or 0)


def restart_postgres(server: ManagedProcess) -> None:
    """Start the cluster of `server` again (same data folder and port) after it was stopped."""
    import pwd

    port = _pg_port(server)
    ids = None
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        ids = (entry.pw_uid, entry.pw_gid)

    def preexec() -> None:
        if ids:
            os.setgid(ids[1])
            os.setuid(ids[0])

    server.proc = subprocess.Popen(
        [str(postgres_bindir() / "postgres"), "-D", str(server.workdir / "data"), "-p", str(port),
         "-k", str(server.workdir), "-h", "127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"],
        stdout=subprocess.DEVNULL, stderr=(server.workdir / "pg-restart.log").open("ab"), preexec_fn=preexec,
        cwd=server.workdir,
    )
    wait_for_port("127.0.0.1", port, 30, server.proc)


def stop_postgres(server: ManagedProcess) -> None:
    """Fast shutdown: every connection is cut, nothing listens until restart_postgres."""
    server.proc.send_signal(signal.SIGINT)
    server.proc.wait(timeout=30)


@pytest.fixture
def own_postgres(run_names: Any) -> Iterator[tuple[ManagedProcess, str]]:
    server = start_postgres()
    factory = DatabaseFactory(server.url, run_names)
    try:
        yield server, factory.create("pgdown")
    finally:
        server.stop()


async def test_postgres_down_30_s_under_flow(
    names: Any, nats_url: str, own_postgres: tuple[ManagedProcess, str]
) -> None:
    server, url = own_postgres
    env = names.env(nats_url, url, **FAST_REDELIVERY)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    audit = start_service("ibkr_audit", env)
    flow = Flow(js, names.stream, names.conn, rate=100).start()
    try:
        await asyncio.sleep(2.0)
        stored_before = await stored(url)
        assert stored_before > 0
        await asyncio.to_thread(stop_postgres, server)
        down_at = time.monotonic()
        await asyncio.sleep(30.0)
        assert audit.proc.poll() is None, "audit must wait for the database, not exit"
        await asyncio.to_thread(restart_postgres, server)
        assert time.monotonic() - down_at >= 30
        await asyncio.sleep(2.0)
        await flow.at_least(3100)
        published = await flow.stop()
        verify = await stored_then_verified(nc, names.conn, url, published)
        assert_complete(verify, await stored(url), published)
        assert published > 3000
        assert any("storing" in line and "failed" in line for line in audit.lines)
    finally:
        audit.stop()
        await nc.close()


async def test_nats_restart_consumer_resumes(names: Any, fresh_pg: str, tmp_path: Path) -> None:
    store_dir = tmp_path / "js"
    server = start_nats(store_dir=store_dir)
    port = int(server.url.rsplit(":", 1)[1])
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await ensure_stream(js, events_stream_config(names.stream, [names.subjects]))
    audit: ServiceProcess | None = None
    try:
        audit = start_service("ibkr_audit", names.env(server.url, fresh_pg, **FAST_REDELIVERY))
        flow = Flow(js, names.stream, names.conn, rate=200).start()
        for _ in range(2):
            await asyncio.sleep(2.0)
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.proc.wait, 15)
            await asyncio.sleep(2.0)
            server = start_nats(port=port, store_dir=store_dir)
        await asyncio.sleep(2.0)
        published = await flow.stop()
        verify = await stored_then_verified(nc, names.conn, fresh_pg, published)
        assert_complete(verify, await stored(fresh_pg), published)
        assert audit.proc.poll() is None
    finally:
        if audit is not None:
            audit.stop()
        await nc.close()
        server.stop()
