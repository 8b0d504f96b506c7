"""console benchmark: one page of Positions and of Orders, signed in over HTTP, on a loaded account vs an empty one.

Starts its own nats-server, PostgreSQL (or uses DATABASE_URL, as bench_sync does), cpsim, and the real
gateway-bridge, sync-worker and console as processes (`python -m ...`), nothing mocked and nothing of a
running stack touched. cpsim holds two accounts: the loaded one with `--positions` positions and `--orders`
orders (`--live` of them resting limits placed at cpsim, which the sync-worker's start sync stores; the
rest filled orders written through the sync-worker's own store API), the other empty; the outbox is
drained (every order event published) before anything is timed. Then one signed-in HTTP client asks
the console for /positions and /orders of each account in turn, `--rounds` times after a warm-up; the
baseline of each page is the same page of the empty account, measured in the same run, interleaved.
Target (issue 18): the loaded page's p95 within 3x the empty page's p95.

    python bench/bench_console.py [--positions 500] [--orders 5000] [--live 500] [--rounds 60] [--quick]
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import time
from typing import Any

import httpx
from bench_sync import Sim, drained, pg_url, place_live, positions
from table import emit, percentile, row

BENCH = "console"
LOADED, EMPTY = "DU1234567", "DU7654321"
USER, OWNER = "bench-viewer", "bench"
PAGES = ("/positions", "/orders")
TARGET = 3.0
STREAM = "IBKR_EVENTS_BENCHC"


def seed(sim: Sim, url: str, args: argparse.Namespace) -> None:
    """cpsim: the positions and the resting orders of the loaded account (the sync-worker stores them)."""
    sim("POST", "/reset", {"accounts": [LOADED, EMPTY]})
    sim("POST", "/limits", {"enabled": False})
    sim("POST", f"/positions/{LOADED}", positions(args.positions, 9_500_000))
    place_live(url, LOADED, args.live)


def seed_filled(database_url: str, nats_url: str, n: int) -> None:
    """The filled orders, through the sync-worker's own store (`SyncStore.apply`, as a sync stores them).

    Not through cpsim's executions: the bridge's `trades.list` answers every execution of the last days in
    one NATS message, and thousands of them pass its 1 MB (TOO_LARGE), a limit of the bridge, not of paging."""
    import asyncio
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from ibkr_common.db.engine import make_engine, make_sessionmaker
    from ibkr_common.events import EventPublisher
    from ibkr_common.service import make_broker
    from ibkr_common.settings import CommonSettings
    from ibkr_common.subjects import Subjects
    from ibkr_sync_worker.normalize import OrderRecord
    from ibkr_sync_worker.store import AccountSnapshot, SyncStore

    now = datetime.now(UTC)
    orders = {}
    for i in range(n):
        when, price, qty = now - timedelta(days=2, minutes=n - i), Decimal(10 + i % 30), Decimal(1 + i % 7)
        fill = {"execution_id": f"bench.{i}", "quantity": str(qty), "price": str(price), "at": when.isoformat()}
        orders[str(600_000 + i)] = (OrderRecord(
            account_id=LOADED, order_id=str(600_000 + i), status="filled", client_order_id=f"bench-filled-{i}",
            conid=9_300_000 + i % 50, symbol=f"E{i % 50}", sec_type="STK", side="BUY" if i % 2 else "SELL",
            order_type="LMT", quantity=qty, filled_quantity=qty, remaining_quantity=Decimal(0), limit_price=price,
            avg_fill_price=price, tif="DAY", fills=(fill,), last_execution_at=when), False)

    async def write() -> None:
        engine = make_engine(database_url)
        publisher = EventPublisher(make_broker(CommonSettings(nats_url=nats_url, connection="bench"), "sync-worker"),
                                   subjects=Subjects("bench"), stream=STREAM, source="sync-worker",
                                   environment="paper")
        store = SyncStore(make_sessionmaker(engine), publisher, connection="bench", user_id=OWNER)
        try:
            await store.apply(AccountSnapshot(LOADED, orders=orders), now, {})
        finally:
            await engine.dispose()

    asyncio.run(write())


def add_user(database_url: str, password: str) -> None:
    import asyncio

    from ibkr_common.db.engine import make_engine
    from ibkr_console.users import UserStore

    async def create() -> None:
        engine = make_engine(database_url)
        try:
            await UserStore(engine).create(USER, password, "viewer", OWNER)
        finally:
            await engine.dispose()

    asyncio.run(create())


def signed_in(base: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=True)
    form = client.get("/signin").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    if csrf is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    done = client.post("/signin", data={"username": USER, "password": password, "csrf": csrf.group(1), "next": "/"})
    if done.status_code != 200 or "/signin" in str(done.url):
        raise RuntimeError(f"signing in failed: {done.status_code} {done.url}")
    return client


def stored(nats_url: str) -> tuple[int, int]:
    """Positions and orders the sync-worker holds for the loaded account, every page walked."""
    import asyncio

    from ibkr_client import IbkrClient

    async def count() -> tuple[int, int]:
        async with IbkrClient(nats_url, connection="bench") as ib:
            held = [p async for page in ib.positions.pages(LOADED) for p in page.positions]
            orders = [o async for page in ib.orders.pages(LOADED) for o in page.orders]
        return len(held), len(orders)

    return asyncio.run(count())


def outbox_drained(database_url: str) -> None:
    """Wait until the sync-worker has published every staged event (the console's feed would read them)."""
    import asyncio

    from ibkr_common.db.engine import make_engine

    async def wait() -> None:
        engine = make_engine(database_url)
        try:
            await drained(engine)
        finally:
            await engine.dispose()

    asyncio.run(wait())


def wait_synced(client: httpx.Client, args: argparse.Namespace, timeout_s: float = 600) -> tuple[int, int]:
    """Wait until the console shows the loaded account's first page full (the start sync stored it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        shown = client.get("/positions", params={"account": LOADED}).text.count("<tr data-conid=")
        page = client.get("/orders", params={"account": LOADED}).text
        orders = page.count("<tr data-order-id=")
        if shown >= min(args.positions, 100) and 'rel="next"' in page:
            return shown, orders
        if time.monotonic() > deadline:
            raise RuntimeError(f"the console showed {shown} positions and {orders} orders after {timeout_s} s")
        time.sleep(1)


def measure(client: httpx.Client, rounds: int, warmup: int) -> dict[tuple[str, str], list[float]]:
    """Milliseconds per page fetch, by (page, account), the four interleaved round after round."""
    samples: dict[tuple[str, str], list[float]] = {(p, a): [] for p in PAGES for a in (LOADED, EMPTY)}
    for n in range(warmup + rounds):
        for (path, account), got in samples.items():
            t0 = time.perf_counter()
            response = client.get(path, params={"account": account})
            ms = (time.perf_counter() - t0) * 1000
            if response.status_code != 200 or f"{path[1:].capitalize()} {account}" not in response.text:
                raise RuntimeError(f"{path} of {account}: {response.status_code}")
            if n >= warmup:
                got.append(ms)
    return samples


def main(args: argparse.Namespace) -> int:
    from cpsim.testing import start_cpsim
    from ibkr_testkit.processes import service_env, start_service
    from ibkr_testkit.servers import start_nats

    nats = start_nats()
    cpsim = start_cpsim(extra_args=["--no-walk"], latency=False)
    db_url, pg = pg_url()
    processes: list[Any] = []
    rows: list[dict[str, Any]] = []
    try:
        seed(Sim(cpsim.url), cpsim.url, args)
        seed_filled(db_url, nats.url, args.orders - args.live)
        password = secrets.token_urlsafe(16)
        names = {"nats_url": nats.url, "conn": "bench", "stream": STREAM,
                 "stream_subjects": "ibkr.bench.events.>", "gateway_url": cpsim.url, "IBKR_USER_ID": OWNER}
        env = service_env(database_url=db_url, **names)
        processes.append(start_service("ibkr_gateway_bridge", service_env(database_url=None, **names)))
        processes.append(start_service("ibkr_sync_worker", {**env, "IBKR_SYNC_INTERVAL": "3600000"}))
        add_user(db_url, password)
        console = start_service("ibkr_console", {**env, "IBKR_CONSOLE_PORT": "0",
                                                 "IBKR_CONSOLE_SECURE_COOKIES": "false"})
        processes.append(console)
        found = re.search(r"console listening on (http://[^\"\s]+)", "".join(console.lines))
        if found is None:
            raise RuntimeError("the console did not say where it listens")
        client = signed_in(found.group(1), password)
        try:
            shown, orders = wait_synced(client, args)
            outbox_drained(db_url)
            print(f"loaded account synced: first pages show {shown} positions, {orders} order rows", file=sys.stderr)
            samples = measure(client, args.rounds, args.warmup)
        finally:
            client.close()
        held, orders = stored(nats.url)
        rows.append(row(BENCH, "loaded account as stored (positions, orders)", float(held + orders), "rows",
                        target=f"{args.positions} + {args.orders}",
                        passed=(held, orders) == (args.positions, args.orders)))
        for path in PAGES:
            loaded, empty = samples[(path, LOADED)], samples[(path, EMPTY)]
            p95, base = percentile(loaded, 95), percentile(empty, 95)
            rows.append(row(BENCH, f"{path} page p95, {args.positions} positions + {args.orders} orders "
                                   f"(baseline: empty account)", p95, "ms", baseline=base,
                            target=f"<= {TARGET}x baseline", passed=p95 <= TARGET * base))
            rows.append(row(BENCH, f"{path} page p50, loaded account", percentile(loaded, 50), "ms",
                            baseline=percentile(empty, 50), target="report"))
    finally:
        for process in reversed(processes):
            process.stop()
        cpsim.stop()
        nats.stop()
        if pg is not None:
            pg.stop()
    emit(rows)
    return 0 if all(r["pass"] is not False for r in rows) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positions", type=int, default=500)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--live", type=int, default=500, help="of --orders, resting limits (the rest filled)")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200 positions, 600 orders (100 live), 20 rounds")
    ns = parser.parse_args()
    if ns.quick:
        ns.positions, ns.orders, ns.live, ns.rounds = 200, 600, 100, 20
    sys.exit(main(ns))
