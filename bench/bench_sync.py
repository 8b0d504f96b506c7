"""sync-worker benchmark: full and no-change syncs of one big account, then rounds over ten accounts.

Starts its own nats-server, PostgreSQL (or uses DATABASE_URL), cpsim (prices still) and the real
gateway-bridge, and runs the sync-worker in-process. Each account holds `--positions` positions and
`--orders` orders: half live (resting, non-marketable GTC limits placed in cpsim, so the live-orders
path is exercised), half filled executions of another app (an hour old, so no follow-up sync).
Baseline: reading the same data through the bridge alone (summary, every page, live orders, trades),
measured in the same run; for the rounds at 10 req/s, the rate-limit floor (requests / 10, with the
per-account trades calls 5 s apart).

Timings are taken without tracing; peak memory is measured in a separate, untimed full sync under
tracemalloc (it counts the in-process bridge too). The first round over the ten accounts is the
worker's own start sync on an empty database (every row written); the no-change round follows.

    python bench/bench_sync.py [--positions 2000] [--orders 500] [--accounts 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from faststream import TestApp
from sqlalchemy import event, text
from table import emit, row

BENCH = "sync"
LIVE_MAX = 1000  # REFERENCE.md 7.4: the gateway lists at most this many live orders
ACCT = "DU1234567"
FAR_S = 5.2  # IBKR allows live orders and trades once per 5 s: idle between timed syncs
STOCKS = [265598, 756733, 320227571, 76792991, 272093, 9579970]  # cpsim's universe
TABLES = ("ibkr_positions", "ibkr_orders", "ibkr_account_info", "ibkr_event_outbox")


class Sim:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, verify=False, timeout=60)

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        r = self.client.request(method, "/sim" + path, json=body)
        r.raise_for_status()
        return r.json()


def positions(n: int, base: int) -> list[dict[str, Any]]:
    return [{"conid": base + i, "symbol": f"B{base + i}", "sec_type": "STK", "quantity": 10 + i % 90,
             "avg_price": 20 + i % 50, "market_price": 21 + i % 53} for i in range(n)]


def executions(n: int, base: int) -> list[dict[str, Any]]:
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return [{"time": when, "conid": 9_300_000 + i % 50, "symbol": f"E{i % 50}", "side": "BUY" if i % 2 else "SELL",
             "quantity": 1 + i % 7, "price": 10 + i % 30, "order_id": str(base + i)} for i in range(n)]


def place_live(url: str, account: str, n: int) -> int:
    """`n` resting BUY limits far below the market (never marketable), questions confirmed."""
    from cpsim.testing import place_confirmed

    placed = 0
    with httpx.Client(base_url=url, verify=False, timeout=30) as gw:
        gw.get("/v1/api/iserver/accounts").raise_for_status()
        gw.post("/v1/api/iserver/questions/suppress", json={"messageIds": ["o163"]}).raise_for_status()
        for i in range(n):
            status, body = place_confirmed(gw, {"conid": STOCKS[i % len(STOCKS)], "orderType": "LMT", "side": "BUY",
                                                "tif": "GTC", "quantity": 1 + i % 5, "price": 1 + (i % 20) / 100,
                                                "cOID": f"bench-{account}-{i}"}, account=account)
            if status != 200 or not isinstance(body, list) or "order_id" not in body[0]:
                raise RuntimeError(f"cpsim did not take live order {i} of {account}: {status} {body}")
            placed += 1
    return placed


def load_account(sim: Sim, url: str, account: str, n_positions: int, n_orders: int, base: int) -> None:
    sim("POST", f"/positions/{account}", positions(n_positions, base))
    live = n_orders // 2
    sim("POST", f"/trades/{account}", executions(n_orders - live, base))
    place_live(url, account, live)


class Timed:
    """Wraps Syncer.sync: the duration and result of every round the worker runs (its start sync too)."""

    def __init__(self, syncer: Any) -> None:
        self.rounds: list[float] = []
        self.results: list[Any] = []
        inner = syncer.sync

        async def sync(accounts: set[str] | None = None) -> Any:
            t0 = time.perf_counter()
            result = await inner(accounts)
            self.rounds.append(time.perf_counter() - t0)
            self.results.append(result)
            return result

        syncer.sync = sync


class Writes:
    """INSERT/UPDATE/DELETE statements (rows for executemany) on the worker's engine."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.count += len(params) if many and isinstance(params, (list, tuple)) else 1


async def wait_rounds(scheduler: Any, n: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while scheduler.rounds < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker ran {scheduler.rounds} sync round(s) in {timeout_s} s")
        await asyncio.sleep(0.02)


async def drained(engine: Any, timeout_s: float = 600) -> None:
    """Wait until the outbox relay has published every staged event (its UPDATEs are not sync writes)."""
    deadline = time.monotonic() + timeout_s
    query = text("SELECT count(*) FROM ibkr_event_outbox WHERE published_at IS NULL")
    while time.monotonic() < deadline:
        async with engine.connect() as c:
            pending = (await c.execute(query)).scalar()
        if not pending:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the outbox still holds {pending} unpublished event(s) after {timeout_s} s")


async def clear(engine: Any) -> None:
    async with engine.begin() as c:
        for table in TABLES:
            await c.execute(text(f"DELETE FROM {table}"))


def pg_url() -> tuple[str, Any]:
    import os

    from ibkr_testkit.servers import start_postgres

    admin = os.environ.get("DATABASE_URL", "")
    server = None
    if not admin.startswith("postgres"):
        server = start_postgres()
        admin = server.url
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"ibkr_bench_sync_{uuid.uuid4().hex[:6]}"
    base = make_url(admin).set(drivername="postgresql")
    with psycopg.connect(base.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    from ibkr_common.db.migrate import upgrade

    upgrade(url)
    return url, server


async def bridge_read(client: Any, accounts: list[str]) -> None:
    """The baseline: what a sync must read, through the bridge alone."""
    for acct in accounts:
        await client.summary(acct)
        await client.invalidate_positions(acct)
        page = 0
        while True:
            body = await client.positions_page(acct, page)
            if len(body["positions"]) < 100:
                break
            page += 1
    await client.live_orders()
    await client.trades(7)  # the worker's IBKR_SYNC_TRADES_DAYS default


async def one_account(args: argparse.Namespace, sim: Sim, url: str, bridge: Any, worker: Any,
                      client: Any) -> list[dict[str, Any]]:
    """One big account, limits lifted: the start sync (full), a no-change sync, a traced full sync."""
    from ibkr_sync_worker.app import build_app

    sim("POST", "/reset")
    sim("POST", "/limits", {"enabled": False})
    load_account(sim, url, ACCT, args.positions, args.orders, 800_000)
    async with TestApp(bridge):
        t0 = time.perf_counter()
        await bridge_read(client, [ACCT])
        baseline = time.perf_counter() - t0
        await asyncio.sleep(FAR_S)
        app = build_app(worker)
        scheduler, engine = app.context.get("sync_scheduler"), app.context.get("sync_engine")
        timed, writes = Timed(scheduler.syncer), Writes(engine)
        async with TestApp(app):
            await wait_rounds(scheduler, 1)
            full_s, full = timed.rounds[0], timed.results[0]
            live = len(await scheduler.syncer.store.open_orders(ACCT))
            await scheduler.wait_idle()
            await drained(engine)
            await asyncio.sleep(FAR_S)
            writes.count = 0
            again = await scheduler.request(None)
            nochange_s, nochange_writes = timed.rounds[-1], writes.count
            # peak memory: a separate full sync on emptied tables, traced and not timed
            await scheduler.wait_idle()
            await clear(engine)
            scheduler.syncer.marks.clear()
            await asyncio.sleep(FAR_S)
            tracemalloc.start()
            traced = await scheduler.request(None)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            await scheduler.wait_idle()
    complete = (full.positions, full.orders, live) == (args.positions, args.orders, args.orders // 2)
    print(f"full sync: {full.positions} positions, {full.orders} orders ({live} live), problems "
          f"{sorted({p.kind for p in full.problems})}", file=sys.stderr)
    return [
        row(BENCH, f"full sync, {full.positions} positions + {full.orders} orders ({live} live)", full_s, "s",
            baseline=baseline, target="report (baseline: the bridge reads alone); all read, no problem",
            passed=complete and not full.problems),
        row(BENCH, "no-change sync", nochange_s, "s", baseline=baseline, target="report"),
        row(BENCH, "database writes on a no-change sync", float(nochange_writes), "rows",
            target="0", passed=nochange_writes == 0 and again.events == 0),
        row(BENCH, "peak traced memory, separate untimed full sync", peak / 2**20, "MiB", target="< 200",
            passed=peak / 2**20 < 200 and traced.positions == args.positions),
    ]


async def many_accounts(args: argparse.Namespace, sim: Sim, url: str, bridge: Any, worker: Any) -> list[dict[str, Any]]:
    """N such accounts under cpsim's real limits and a 10 req/s bridge: the first (full) round, then no change."""
    from ibkr_common.db.engine import make_engine
    from ibkr_sync_worker.app import build_app

    ids = [f"DU{7_000_000 + i}" for i in range(args.accounts)]
    sim("POST", "/reset", {"accounts": ids})
    sim("POST", "/limits", {"enabled": False})
    for i, acct in enumerate(ids):
        load_account(sim, url, acct, args.positions, args.orders, 9_400_000 + i * 10_000)
    sim("POST", "/limits", {"enabled": True, "clear": True})
    engine = make_engine(worker.database_url)
    await clear(engine)
    await engine.dispose()
    pages = args.positions // 100 + 1
    requests = args.accounts * (2 + pages) + 3 + args.accounts  # + accounts lists, live orders, trades per account
    # 10 req/s for all of it, and the trades of one account after another at 1 per 5 s (REFERENCE.md 3)
    floor = (requests - args.accounts) / 10 + 5 * (args.accounts - 1)
    async with TestApp(bridge):
        app = build_app(worker)
        scheduler = app.context.get("sync_scheduler")
        engine = app.context.get("sync_engine")
        timed, writes = Timed(scheduler.syncer), Writes(engine)
        async with TestApp(app):
            await wait_rounds(scheduler, 1, timeout_s=900)
            first_s, first = timed.rounds[0], timed.results[0]
            await scheduler.wait_idle(900)
            await drained(engine)
            await asyncio.sleep(FAR_S)
            writes.count = 0
            again = await scheduler.request(None)
            again_s, again_writes = timed.rounds[-1], writes.count
    throttled = sum(r.get("status") == 429 for r in sim("GET", "/state").get("requests") or [])
    n = args.accounts
    for name, result in (("first", first), ("no-change", again)):
        kinds = sorted({f"{p.kind}:{p.account_id}" for p in result.problems})
        print(f"{name} round: {result.positions} positions, {result.orders} orders, problems {kinds}", file=sys.stderr)
    label = f"{n} accounts x {args.positions} positions + {args.orders} orders at 10 req/s"
    live = args.orders // 2
    listed = n * (args.orders - live) + min(n * live, LIVE_MAX)
    return [
        row(BENCH, f"first (full) round, {label}", first_s, "s", baseline=floor,
            target="< 1.3x the rate-limit floor", passed=first_s < 1.3 * floor),
        row(BENCH, f"positions read in the first round (of {n * args.positions})", float(first.positions), "rows",
            target=str(n * args.positions), passed=first.positions == n * args.positions),
        row(BENCH, f"orders read in the first round (of {n * args.orders}, {n * live} live; one live-orders call "
            f"lists at most {LIVE_MAX})", float(first.orders), "rows", target=str(listed),
            passed=first.orders == listed),
        row(BENCH, "sync problems in the first round", float(len(first.problems)), "problems", target="0",
            passed=not first.problems),
        row(BENCH, f"no-change round, {label}", again_s, "s", baseline=floor, target="< 1.3x the rate-limit floor",
            passed=again_s < 1.3 * floor),
        row(BENCH, f"database writes on the no-change round over {n} accounts", float(again_writes), "rows",
            target="0", passed=again_writes == 0 and again.events == 0),
        row(BENCH, "429 answers from cpsim during both rounds", float(throttled), "calls", target="0",
            passed=throttled == 0),
    ]


async def main(args: argparse.Namespace) -> int:
    from faststream.nats import NatsBroker

    from cpsim.testing import start_cpsim
    from ibkr_common.bridge_client import BridgeClient
    from ibkr_common.subjects import Subjects
    from ibkr_gateway_bridge.app import build_app as build_bridge
    from ibkr_gateway_bridge.settings import BridgeSettings
    from ibkr_sync_worker.settings import SyncSettings
    from ibkr_testkit.servers import start_nats

    nats = start_nats()
    cpsim = start_cpsim(extra_args=["--no-walk"], latency=False)  # our overhead, not the gateway's round trips
    db_url, pg = pg_url()
    sim = Sim(cpsim.url)
    scheme, rest = cpsim.url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    conn = "bench"
    common = {"nats_url": nats.url, "connection": conn, "events_stream": "IBKR_EVENTS_BENCH",
              "events_subjects": f"ibkr.{conn}.events.>"}
    gateway = {"gateway_host": host, "gateway_port": int(port), "gateway_ssl": scheme == "https"}
    worker = SyncSettings(**common, database_url=db_url, sync_interval_ms=3_600_000)
    rows: list[dict[str, Any]] = []
    try:
        requester = NatsBroker(nats.url)
        await requester.connect()
        client = BridgeClient(requester, Subjects(conn), timeout_s=120, priority="sync")
        rows += await one_account(args, sim, cpsim.url, build_bridge(BridgeSettings(**common, **gateway,
                                                                                    rate_limit_rps=100)),
                                  worker, client)
        if args.accounts:
            rows += await many_accounts(args, sim, cpsim.url,
                                        build_bridge(BridgeSettings(**common, **gateway, rate_limit_rps=10)), worker)
        await requester.stop()
    finally:
        cpsim.stop()
        nats.stop()
        if pg is not None:
            pg.stop()
    emit(rows)
    return 0 if all(r["pass"] is not False for r in rows) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="300 positions, 100 orders, 3 accounts")
    ns = parser.parse_args()
    if ns.quick:
        ns.positions, ns.orders, ns.accounts = 300, 100, 3
    sys.exit(asyncio.run(main(ns)))
