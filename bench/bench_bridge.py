"""gateway-bridge benchmarks (own nats-server and cpsim; nothing shared with a running stack).

1. Overhead: `contracts.search` through NATS and the bridge (a subprocess, limits lifted on both
   sides) against the same GET /iserver/secdef/search made directly with httpx, sequential,
   interleaved in blocks; p50 and p99 and their ratios. Target: p50 ratio <= 1.8.
2. Limiter: --limiter-seconds of overload from three priorities (order: 2 what-if order checks/s,
   POST /iserver/account/{accountId}/orders/whatif at order priority, open loop; account and sync:
   closed-loop workers) through the bridge's client and limiter against cpsim with IBKR's limits
   on. Targets: throughput >= 95 % of the configured limit, zero 429s, p99 queue wait of order
   requests < 1.5 s.

Usage: python bench/bench_bridge.py [--requests 400] [--limiter-seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import httpx
import nats
from table import emit, percentile, row

ACCT = "DU1234567"
BENCH = "bridge"


async def overhead(sim_url: str, nats_url: str, requests: int) -> list[dict[str, Any]]:
    from ibkr_testkit.processes import service_env, start_service

    httpx.post(sim_url + "/sim/limits", json={"enabled": False, "clear": True}, verify=False)
    env = service_env(nats_url=nats_url, database_url=None, conn="bench", stream="IBKR_EVENTS_BENCH",
                      stream_subjects="ibkr.bench.events.>", gateway_url=sim_url,
                      IBKR_RATE_LIMIT_RPS="10000", IBKR_LOG_LEVEL="WARNING")
    env["IBKR_LOG_LEVEL"] = "INFO"
    proc = start_service("ibkr_gateway_bridge", env, ready="gateway-bridge ready")
    direct_ms: list[float] = []
    bridge_ms: list[float] = []
    try:
        nc = await nats.connect(nats_url)
        payload = json.dumps({"symbol": "AAPL"}).encode()
        async with httpx.AsyncClient(base_url=sim_url + "/v1/api", verify=False,
                                     limits=httpx.Limits(max_connections=4)) as http:
            for _ in range(20):  # warm both paths (connections, pre-flights, imports)
                await http.get("/iserver/secdef/search", params={"symbol": "AAPL"})
                await nc.request("ibkr.bench.contracts.search", payload, timeout=10)
            block = 25
            for _ in range(max(1, requests // block)):
                for _ in range(block):
                    t = time.perf_counter()
                    r = await http.get("/iserver/secdef/search", params={"symbol": "AAPL"})
                    r.json()
                    direct_ms.append((time.perf_counter() - t) * 1000)
                for _ in range(block):
                    t = time.perf_counter()
                    msg = await nc.request("ibkr.bench.contracts.search", payload, timeout=10)
                    assert json.loads(msg.data)["ok"] is True, msg.data[:200]
                    bridge_ms.append((time.perf_counter() - t) * 1000)
        await nc.close()
    finally:
        proc.stop()
    d50, d99 = percentile(direct_ms, 50), percentile(direct_ms, 99)
    b50, b99 = percentile(bridge_ms, 50), percentile(bridge_ms, 99)
    return [
        row(BENCH, "overhead p50: NATS+bridge vs direct httpx", b50, "ms", baseline=d50, target="ratio <= 1.8",
            passed=b50 / d50 <= 1.8),
        row(BENCH, "overhead p99: NATS+bridge vs direct httpx", b99, "ms", baseline=d99, target="report"),
    ]


async def limiter(sim_url: str, seconds: float, rps: float) -> list[dict[str, Any]]:
    from decimal import Decimal

    from ibkr_common.messages import bridge as m
    from ibkr_gateway_bridge.client import CallRecord, ClientPortal, Gateway, GatewayError
    from ibkr_gateway_bridge.settings import BridgeSettings

    httpx.post(sim_url + "/sim/reset", json={}, verify=False)
    httpx.post(sim_url + "/sim/limits", json={"enabled": True, "clear": True}, verify=False)
    host, port = sim_url.split("://", 1)[1].rsplit(":", 1)
    settings = BridgeSettings(IBKR_GATEWAY_HOST=host, IBKR_GATEWAY_PORT=int(port), IBKR_RATE_LIMIT_RPS=rps,
                              IBKR_BRIDGE_QUEUE_TIMEOUT_S=600)
    records: list[CallRecord] = []
    portal = ClientPortal(Gateway(settings, on_call=records.append))
    await portal.iserver_accounts("session")
    await portal.portfolio_accounts("session")
    records.clear()
    errors: dict[str, int] = {}
    stop_at = time.monotonic() + seconds

    async def guarded(coro: Any) -> None:
        try:
            await coro
        except GatewayError as exc:
            errors[str(exc.code)] = errors.get(str(exc.code), 0) + 1

    # order traffic: an order endpoint at order priority (a what-if check places nothing, so it can repeat)
    check = m.OrderSpec(conid=265598, side="BUY", quantity=Decimal(1), order_type="LMT", price=Decimal("190"),
                        tif="DAY")

    async def order_caller() -> None:
        tasks = []
        while time.monotonic() < stop_at:
            tasks.append(asyncio.create_task(guarded(portal.whatif(ACCT, [check], "order"))))
            await asyncio.sleep(0.5)
        await asyncio.gather(*tasks)

    async def worker(priority: str, n: int) -> None:
        while time.monotonic() < stop_at:
            if priority == "account":
                await guarded(portal.portfolio_summary(ACCT, "account"))
            elif n == 0:
                await guarded(portal.live_orders(priority="sync", max_wait_s=600))
            else:
                await guarded(portal.secdef_search("AAPL", priority="sync"))

    started = time.monotonic()
    await asyncio.gather(order_caller(), *(worker("account", i) for i in range(8)),
                         *(worker("sync", i) for i in range(8)))
    elapsed = time.monotonic() - started
    await portal.aclose()
    done = [r for r in records if r.status is not None]
    n429 = sum(1 for r in records if r.status == 429)
    orders = [r for r in records if r.priority == "order"]
    assert orders and all(r.path == "/iserver/account/{accountId}/orders/whatif" for r in orders), orders[:3]
    waits = [r.queue_wait_ms / 1000 for r in orders]
    throughput = len(done) / elapsed
    state = httpx.get(sim_url + "/sim/state", verify=False).json()
    violations = (state.get("limits") or {}).get("violations", n429)
    return [
        row(BENCH, f"limiter throughput ({seconds:.0f} s overload)", throughput, "req/s", baseline=rps,
            target=">= 0.95 x limit", passed=throughput >= 0.95 * rps),
        row(BENCH, "limiter 429s (bridge seen / cpsim violations)", float(n429 + int(violations)), "count",
            target="0", passed=n429 == 0 and not violations),
        row(BENCH, "limiter p99 queue wait of order requests (whatif)", percentile(waits, 99), "s",
            target="< 1.5 s", passed=percentile(waits, 99) < 1.5),
        row(BENCH, "limiter order requests answered ok", float(sum(1 for r in orders if r.outcome == "ok")), "count",
            baseline=float(len(orders)), target="report"),
        row(BENCH, "limiter p99 queue wait of all requests", percentile([r.queue_wait_ms / 1000 for r in records],
                                                                         99), "s", target="report"),
    ] + ([row(BENCH, f"limiter errors {code}", float(n), "count", target="report") for code, n in errors.items()])


async def main_async(args: argparse.Namespace) -> int:
    from cpsim.testing import start_cpsim
    from ibkr_testkit.servers import start_nats

    sim = start_cpsim(latency=False)  # the benchmark measures our overhead, not the gateway's round trips
    server = start_nats()
    try:
        rows = await overhead(sim.url, server.url, args.requests)
        rows += await limiter(sim.url, args.limiter_seconds, args.rps)
    finally:
        server.stop()
        sim.stop()
    emit(rows)
    return 0 if all(r["pass"] is not False for r in rows) else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--limiter-seconds", type=float, default=60.0)
    p.add_argument("--rps", type=float, default=10.0)
    p.add_argument("--quick", action="store_true", help="short run: 100 requests, 15 s of limiter overload")
    args, _ = p.parse_known_args()
    if args.quick:
        args.requests, args.limiter_seconds = 100, 15.0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
