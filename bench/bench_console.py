"""console benchmark: one page of Positions and of Orders, signed in over HTTP, on a loaded account vs an empty one.

Starts its own nats-server, PostgreSQL (or uses DATABASE_URL, as bench_sync does), cpsim, and the real
gateway-bridge, sync-worker and console as processes (`python -m ...`), nothing mocked and nothing of a
running stack touched. cpsim holds two accounts: the loaded one with `--positions` positions and `--orders`
orders (`--live` of them resting limits placed at cpsim, the rest filled executions), the other empty. The
sync-worker's start sync stores them (its own path, its own database). Then one signed-in HTTP client asks
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
from bench_sync import Sim, executions, pg_url, place_live, positions
from table import emit, percentile, row

BENCH = "console"
LOADED, EMPTY = "DU1234567", "DU7654321"
USER, OWNER = "bench-viewer", "bench"
PAGES = ("/positions", "/orders")
TARGET = 3.0


def seed(sim: Sim, url: str, args: argparse.Namespace) -> None:
    sim("POST", "/reset", {"accounts": [LOADED, EMPTY]})
    sim("POST", "/limits", {"enabled": False})
    sim("POST", f"/positions/{LOADED}", positions(args.positions, 9_500_000))
    sim("POST", f"/trades/{LOADED}", executions(args.orders - args.live, 600_000))
    place_live(url, LOADED, args.live)


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
        password = secrets.token_urlsafe(16)
        names = {"nats_url": nats.url, "conn": "bench", "stream": "IBKR_EVENTS_BENCHC",
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
            print(f"loaded account synced: first pages show {shown} positions, {orders} order rows", file=sys.stderr)
            samples = measure(client, args.rounds, args.warmup)
        finally:
            client.close()
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
