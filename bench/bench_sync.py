"""sync-worker benchmark: full and no-change syncs of one big account, then a round over ten accounts.

Starts its own nats-server, PostgreSQL (or uses DATABASE_URL), cpsim (prices still) and the real
gateway-bridge, and runs the sync-worker in-process. Baseline: reading the same data through the
bridge alone (summary, every page, live orders, trades), measured in the same run.

    python bench/bench_sync.py [--positions 2000] [--orders 500] [--accounts 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import httpx
from faststream import TestApp
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table import emit, row

BENCH = "sync"
ACCT = "DU1234567"
FAR_S = 5.2  # IBKR allows live orders and trades once per 5 s: idle between timed syncs


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


def executions(n: int) -> list[dict[str, Any]]:
    return [{"conid": 9_300_000 + i % 50, "symbol": f"E{i % 50}", "side": "BUY" if i % 2 else "SELL",
             "quantity": 1 + i % 7, "price": 10 + i % 30, "order_id": str(800_000 + i)} for i in range(n)]


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
    await client.trades(2)


async def main(args: argparse.Namespace) -> int:
    from cpsim.testing import start_cpsim
    from ibkr_common.subjects import Subjects
    from ibkr_gateway_bridge.app import build_app as build_bridge
    from ibkr_gateway_bridge.settings import BridgeSettings
    from ibkr_sync_worker.app import build_app
    from ibkr_sync_worker.bridge_client import BridgeClient
    from ibkr_sync_worker.settings import SyncSettings
    from ibkr_testkit.servers import start_nats

    nats = start_nats()
    cpsim = start_cpsim(extra_args=["--no-walk"])
    db_url, pg = pg_url()
    sim = Sim(cpsim.url)
    scheme, rest = cpsim.url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    conn = "bench"
    common = {"nats_url": nats.url, "connection": conn, "events_stream": "IBKR_EVENTS_BENCH",
              "events_subjects": f"ibkr.{conn}.events.>"}
    rows: list[dict[str, Any]] = []
    try:
        import nats as nats_py

        nc = await nats_py.connect(nats.url)
        client = BridgeClient(nc, Subjects(conn), timeout_s=120)
        # ---- one big account, limits lifted -----------------------------------------------------
        sim("POST", "/reset")
        sim("POST", "/limits", {"enabled": False})
        sim("POST", f"/positions/{ACCT}", positions(args.positions, 9_200_000))
        sim("POST", f"/trades/{ACCT}", executions(args.orders))
        bridge_settings = BridgeSettings(**common, gateway_host=host, gateway_port=int(port),
                                         gateway_ssl=scheme == "https", rate_limit_rps=100)
        worker_settings = SyncSettings(**common, database_url=db_url, sync_interval_ms=3_600_000)
        async with TestApp(build_bridge(bridge_settings)):
            t0 = time.perf_counter()
            await bridge_read(client, [ACCT])
            baseline = time.perf_counter() - t0
            await asyncio.sleep(FAR_S)
            app = build_app(worker_settings)
            async with TestApp(app):
                scheduler = app.context.get("sync_scheduler")
                engine = app.context.get("sync_engine")
                writes = [0]

                def count(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
                    if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
                        writes[0] += len(params) if many and isinstance(params, (list, tuple)) else 1

                event.listen(engine.sync_engine, "before_cursor_execute", count)
                try:
                    await scheduler.request(None)  # the start sync may hold the first slot
                except Exception:
                    pass
                # fresh database state for a timed full sync: a new connection id would need a new app,
                # so time the first sync of a second account set instead: clear the rows
                from sqlalchemy import text

                async with engine.begin() as c:
                    for table in ("ibkr_positions", "ibkr_orders", "ibkr_account_info", "ibkr_event_outbox"):
                        await c.execute(text(f"DELETE FROM {table}"))
                scheduler.syncer.marks.clear()
                await scheduler.settle()
                await asyncio.sleep(FAR_S)
                tracemalloc.start()
                t0 = time.perf_counter()
                full = await scheduler.request(None)
                full_s = time.perf_counter() - t0
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                await scheduler.settle()
                await asyncio.sleep(FAR_S)
                writes[0] = 0
                t0 = time.perf_counter()
                again = await scheduler.request(None)
                nochange_s = time.perf_counter() - t0
                nochange_writes = writes[0]
        n_orders = full.orders
        rows += [
            row(BENCH, f"full sync, {full.positions} positions + {n_orders} orders", full_s, "s",
                baseline=baseline, target="report (baseline: the bridge reads alone)"),
            row(BENCH, "no-change sync", nochange_s, "s", baseline=baseline, target="report"),
            row(BENCH, "database writes on a no-change sync", float(nochange_writes), "rows",
                target="0", passed=nochange_writes == 0 and again.events == 0),
            row(BENCH, "peak traced memory during the full sync", peak / 2**20, "MiB", target="< 200",
                passed=peak / 2**20 < 200),
        ]
        # ---- N accounts under the real 10 req/s ----------------------------------------------------
        if args.accounts:
            ids = [f"DU{7_000_000 + i}" for i in range(args.accounts)]
            sim("POST", "/reset", {"accounts": ids})
            for i, acct in enumerate(ids):
                sim("POST", f"/positions/{acct}", positions(args.positions, 9_400_000 + i * 10_000))
            limited = BridgeSettings(**common, gateway_host=host, gateway_port=int(port),
                                     gateway_ssl=scheme == "https", rate_limit_rps=10)
            requests = args.accounts * (2 + (args.positions + 100) // 100) + 3
            floor = requests / 10
            async with TestApp(build_bridge(limited)):
                app = build_app(worker_settings)
                async with TestApp(app):
                    scheduler = app.context.get("sync_scheduler")
                    try:
                        await scheduler.request(None)
                    except Exception:
                        pass
                    await scheduler.settle()
                    await asyncio.sleep(FAR_S)
                    t0 = time.perf_counter()
                    result = await scheduler.request(None)
                    round_s = time.perf_counter() - t0
            rows.append(row(BENCH, f"round over {args.accounts} accounts x {args.positions} positions at 10 req/s",
                            round_s, "s", baseline=floor, target="< 1.3x the rate-limit floor",
                            passed=round_s < 1.3 * floor and not [p for p in result.problems
                                                                   if p.kind != "account_missing"]))
        await nc.close()
    finally:
        cpsim.stop()
        nats.stop()
        if pg is not None:
            pg.stop()
    emit(rows)
    return 0 if all(r["pass"] for r in rows) else 1


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
