"""Benchmark of the audit service on PostgreSQL, beside a raw psycopg batched insert of the same rows.

    python bench/bench_audit.py [--events 50000] [--lag-rate 2000] [--lag-seconds 10]

Starts its own nats-server and PostgreSQL (ibkr_testkit.servers), then measures in one run:
1. raw: psycopg `executemany` of the same rows (envelopes, hashes), 500 rows per transaction, into a
   copy of the audit table (same columns and indexes): the floor of what the database takes;
2. audit stored events/s: N events are waiting in the stream, audit (a subprocess, default settings)
   is started, and the rate is N over the time from its first to its last committed row;
3. publish-to-commit lag: with audit caught up, events are published at a steady rate; the commit time
   of each is when its seq becomes visible (the bench polls `max(seq)` every few ms);
4. CPU milliseconds per stored event of the audit process (user + system time, read from
   /proc/<pid>/stat at each commit the bench sees), over the backlog drain and over the steady flow.
Target (issue): audit >= 0.35 x raw on the durable server and >= 5,000 events/s.

All three are measured on two PostgreSQL servers, one after the other, and each row says which:
- the throwaway cluster of ibkr_testkit (fsync=off, synchronous_commit=off: no durability at all);
- a durable one (`--durable-url`, default the machine's PostgreSQL at 127.0.0.1:5432 when it answers):
  the bench reads `fsync` and `synchronous_commit` there, and sets `synchronous_commit=on` on the
  bench's and audit's connections, so a commit waits for its WAL flush (as long as fsync is on).
`--durable-url none` skips the second server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import psycopg
from sqlalchemy.engine import make_url
from table import emit, row

from ibkr_audit.chain import GENESIS_HASH, ChainRow, link
from ibkr_audit.consumer import parse_message
from ibkr_common.envelope import EventEnvelope, new_event
from ibkr_common.streams import ensure_stream, events_stream_config
from ibkr_common.subjects import Subjects
from ibkr_testkit.databases import DatabaseFactory
from ibkr_testkit.processes import service_env, start_service
from ibkr_testkit.servers import start_nats, start_postgres

CONN = "bench"
STREAM = "IBKR_EVENTS_BENCH"
SUBJECTS = f"ibkr.{CONN}.events.>"
COLUMNS = ("seq", "event_id", "conn", "type", "account_id", "user_id", "source", "occurred_at", "stored_at",
           "stream_seq", "envelope", "prev_hash", "hash")


@dataclass(frozen=True)
class Names:
    database: str = f"ibkr_bench_{uuid.uuid4().hex[:6]}"
    app_role: str = f"ibkr_bench_{uuid.uuid4().hex[:6]}"


def make_events(n: int) -> list[EventEnvelope]:
    """Events shaped like the bridge's gateway.call (the most frequent kind)."""
    now = datetime.now(UTC)
    return [
        new_event("gateway.call", conn=CONN, environment="paper", source="gateway-bridge", occurred_at=now,
                  payload={"method": "GET", "path": "/iserver/account/{accountId}/orders", "status": 200,
                           "latency_ms": 12.5, "retries": 0, "n": i})
        for i in range(n)
    ]


def raw_insert(url: str, events: list[EventEnvelope], batch: int = 500) -> float:
    """Rows/s of psycopg executemany of the same rows, `batch` per transaction."""
    rows: list[ChainRow] = []
    for i, e in enumerate(events):
        item, _ = parse_message(f"ibkr.{CONN}.events.gateway.call", e.to_bytes(), i + 1)
        assert isinstance(item, ChainRow)
        rows.append(item)
    stored_at = datetime.now(UTC)
    chained = link(0, GENESIS_HASH, rows, stored_at)
    values = [tuple(getattr(r, c) for c in COLUMNS) for r in chained]
    sql = f"INSERT INTO bench_raw ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (LIKE ibkr_trading_activity_log INCLUDING ALL)")
        conn.commit()
        start = time.perf_counter()
        for i in range(0, len(values), batch):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, values[i : i + batch])
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_raw")
        conn.commit()
    return len(values) / elapsed


async def publish_all(js: object, events: list[EventEnvelope], in_flight: int = 256) -> dict[str, float]:
    """Publish with acks, `in_flight` at a time; returns event_id -> publish start time."""
    subject = Subjects(CONN).event("gateway.call")
    sent: dict[str, float] = {}
    sem = asyncio.Semaphore(in_flight)

    async def one(e: EventEnvelope) -> None:
        async with sem:
            eid = str(e.event_id)
            sent[eid] = time.monotonic()
            await js.publish(subject, e.to_bytes(), headers={"Nats-Msg-Id": eid}, stream=STREAM, timeout=30)  # type: ignore[attr-defined]

    await asyncio.gather(*(one(e) for e in events))
    return sent


async def publish_steady(js: object, events: list[EventEnvelope], rate: float) -> dict[str, float]:
    """Publish at `rate` events/s (acks awaited concurrently); returns event_id -> publish time."""
    subject = Subjects(CONN).event("gateway.call")
    sent: dict[str, float] = {}
    tasks = []
    start = time.monotonic()
    for i, e in enumerate(events):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        eid = str(e.event_id)
        sent[eid] = time.monotonic()
        tasks.append(asyncio.ensure_future(
            js.publish(subject, e.to_bytes(), headers={"Nats-Msg-Id": eid}, stream=STREAM, timeout=30)  # type: ignore[attr-defined]
        ))
    await asyncio.gather(*tasks)
    return sent


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux: /proc/<pid>/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SeqWatcher:
    """Polls max(seq) and records when each value first became visible (commit time), with the CPU
    time the audit process (`pid`, once set) had used by then."""

    def __init__(self, url: str, interval_s: float = 0.003) -> None:
        self.url, self.interval_s = url, interval_s
        self.samples: list[tuple[float, int]] = []
        self.cpu: dict[int, float] = {}  # seq -> CPU seconds of the audit process when it became visible
        self.pid: int | None = None
        self._stop = False

    async def run(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            while not self._stop:
                cur = await conn.execute("SELECT coalesce(max(seq), 0) FROM ibkr_trading_activity_log")
                row = await cur.fetchone()
                seq = int(row[0]) if row else 0
                if not self.samples or seq > self.samples[-1][1]:
                    self.samples.append((time.monotonic(), seq))
                    if self.pid is not None:
                        self.cpu[seq] = cpu_seconds(self.pid)
                await asyncio.sleep(self.interval_s)

    def stop(self) -> None:
        self._stop = True

    def commit_time(self, seq: int) -> float:
        lo, hi = 0, len(self.samples) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.samples[mid][1] >= seq:
                hi = mid
            else:
                lo = mid + 1
        return self.samples[lo][0]

    async def wait_for(self, seq: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.samples or self.samples[-1][1] < seq:
            if time.monotonic() > deadline:
                raise TimeoutError(f"audit stored {self.samples[-1][1] if self.samples else 0} of {seq}")
            await asyncio.sleep(0.01)


async def seqs_of(url: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT event_id, seq FROM ibkr_trading_activity_log")
        return {eid: seq for eid, seq in await cur.fetchall()}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


DURABLE_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
SYNC_ON = "-csynchronous_commit=on"


@dataclass
class Figures:
    """What one PostgreSQL server gave."""

    durability: str
    raw_rate: float
    audit_rate: float
    publish_rate: float
    lags: list[float]
    stored: int
    total: int
    cpu_ms_drain: float
    cpu_ms_steady: float


def durability_of(url: str) -> str:
    """`fsync=on, synchronous_commit=on` as the server reports it to a connection like the bench's."""
    with psycopg.connect(url) as conn:
        values = [conn.execute(f"SHOW {name}").fetchone() for name in ("fsync", "synchronous_commit")]
    fsync, sync = (str(v[0]) if v else "?" for v in values)
    return f"fsync={fsync}, synchronous_commit={sync}"


def with_sync_commit(url: str) -> str:
    """The URL with `options=-c synchronous_commit=on` (libpq and SQLAlchemy both pass it on)."""
    return make_url(url).update_query_dict({"options": SYNC_ON}).render_as_string(hide_password=False)


def reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), timeout=1):
            return True
    except OSError:
        return False


async def measure(nats_url: str, pg_admin_url: str, durable: bool, args: argparse.Namespace) -> Figures:
    """Raw insert, audit drain rate and steady-flow lag on one PostgreSQL server."""
    audit = None
    factory = DatabaseFactory(pg_admin_url, Names())
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        app_url = factory.create("audit")
        admin_url = make_url(factory.admin_url_for("audit")).set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        if durable:
            app_url, admin_url = with_sync_commit(app_url), with_sync_commit(admin_url)
        psy_url = make_url(app_url).set(drivername="postgresql").render_as_string(hide_password=False)
        durability = durability_of(psy_url)
        events = make_events(args.events)

        print(f"[{durability}] raw insert of {len(events)} rows ...", file=sys.stderr)
        raw_rate = statistics.median(raw_insert(admin_url, events) for _ in range(args.raw_runs))

        await ensure_stream(js, events_stream_config(STREAM, [SUBJECTS]))
        print(f"publishing {len(events)} events (audit not running) ...", file=sys.stderr)
        t0 = time.monotonic()
        await publish_all(js, events)
        publish_rate = len(events) / (time.monotonic() - t0)

        watcher = SeqWatcher(psy_url)
        watch_task = asyncio.create_task(watcher.run())
        env = service_env(nats_url=nats_url, database_url=app_url, conn=CONN, stream=STREAM,
                          stream_subjects=SUBJECTS, IBKR_MIGRATE_ON_START="false")
        audit = await asyncio.to_thread(start_service, "ibkr_audit", env)
        watcher.pid = audit.proc.pid
        print("audit started; draining the backlog ...", file=sys.stderr)
        await watcher.wait_for(len(events), timeout=600)
        first = next(t for t, s in watcher.samples if s > 0)
        last = watcher.commit_time(len(events))
        first_seq = next(s for t, s in watcher.samples if s > 0)
        audit_rate = (len(events) - first_seq) / (last - first) if last > first else float("nan")
        last_seq = next(s for t, s in watcher.samples if s >= len(events))
        cpu_first = watcher.cpu.get(first_seq, float("nan"))
        cpu_ms_drain = (watcher.cpu.get(last_seq, float("nan")) - cpu_first) * 1000 / (last_seq - first_seq)

        lag_events = make_events(int(args.lag_rate * args.lag_seconds))
        print(f"steady flow: {len(lag_events)} events at {args.lag_rate:.0f}/s ...", file=sys.stderr)
        cpu_before = cpu_seconds(audit.proc.pid)
        sent = await publish_steady(js, lag_events, args.lag_rate)
        total = len(events) + len(lag_events)
        await watcher.wait_for(total, timeout=120)
        cpu_ms_steady = (cpu_seconds(audit.proc.pid) - cpu_before) * 1000 / len(lag_events)
        watcher.stop()
        await watch_task
        seqs = await seqs_of(psy_url)
        lags = [(watcher.commit_time(seqs[eid]) - t) * 1000 for eid, t in sent.items()]
    finally:
        if audit is not None:
            audit.stop()
        try:
            await js.delete_stream(STREAM)  # the next server's run uses the same subjects
        except Exception:  # never created
            pass
        await nc.close()
        factory.drop_all()
    return Figures(durability, raw_rate, audit_rate, publish_rate, lags, len(seqs), total, cpu_ms_drain,
                   cpu_ms_steady)


def rows_of(f: Figures, lag_rate: float) -> list[dict[str, object]]:
    ratio = f.audit_rate / f.raw_rate
    on = f"[{f.durability}]"
    # The target is for PostgreSQL with fsync on; the throwaway server's figures are reported.
    durable = "fsync=on" in f.durability
    return [
        row("audit", f"stored events/s vs raw executemany {on}", f.audit_rate, "ev/s", baseline=f.raw_rate,
            target=">= 0.35 x raw and >= 5000" if durable else "report (the target is for fsync=on)",
            passed=ratio >= 0.35 and f.audit_rate >= 5000 if durable else None),
        row("audit", f"CPU ms per stored event, backlog drain {on}", f.cpu_ms_drain, "ms", target="report"),
        row("audit", f"CPU ms per stored event at {lag_rate:.0f} ev/s {on}", f.cpu_ms_steady, "ms",
            target="report"),
        row("audit", f"publish rate with ack, 256 in flight {on}", f.publish_rate, "ev/s"),
        row("audit", f"lag publish->commit p50 at {lag_rate:.0f} ev/s {on}", pct(f.lags, 50), "ms"),
        row("audit", f"lag publish->commit p99 at {lag_rate:.0f} ev/s {on}", pct(f.lags, 99), "ms",
            target="report"),
        row("audit", f"events stored (vs published) {on}", float(f.stored), "events", baseline=float(f.total),
            target="equal", passed=f.stored == f.total),
    ]


async def main_async(args: argparse.Namespace) -> int:
    nats_server = start_nats()
    pg = start_postgres()
    figures: list[Figures] = []
    try:
        figures.append(await measure(nats_server.url, pg.url, False, args))
        pg.stop()
        if args.durable_url != "none" and reachable(args.durable_url):
            figures.append(await measure(nats_server.url, args.durable_url, True, args))
        elif args.durable_url != "none":
            print(f"no PostgreSQL at {make_url(args.durable_url).render_as_string()}: durable rows skipped",
                  file=sys.stderr)
    finally:
        nats_server.stop()
        pg.stop()
    rows = [r for f in figures for r in rows_of(f, args.lag_rate)]
    emit(rows)
    print("(durability of each row as the server reported it; the first server is ibkr_testkit's throwaway one)")
    if not any("fsync=on" in f.durability for f in figures):
        print("no PostgreSQL with fsync on was measured: the throughput target was not checked")
    passed = [r["pass"] for r in rows if r["pass"] is not None]
    return 0 if all(passed) else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--lag-rate", type=float, default=2000.0)
    p.add_argument("--lag-seconds", type=float, default=10.0)
    p.add_argument("--raw-runs", type=int, default=3)
    p.add_argument("--durable-url", default=DURABLE_DEFAULT,
                   help="superuser URL of a PostgreSQL with durability on ('none': skip)")
    raise SystemExit(asyncio.run(main_async(p.parse_args())))


if __name__ == "__main__":
    main()
