"""compliance benchmarks (own nats-server and cpsim; every service a subprocess, nothing shared).

1. `orders.check` latency p50/p99 through NATS with realistic state: 50 positions and 100
   executions today in cpsim, synced by the sync-worker; the session from the session-keeper.
   Target: p99 < 20 ms.
2. `orders.submit` end to end against cpsim (limits lifted) against a direct `bridge.orders.place`
   of the same order in the same run, interleaved in blocks. Target: p50 ratio <= 2.5.
3. The compliance process's CPU milliseconds (user + system, from /proc/<pid>/stat) per checked and
   per submitted order, counted over the timed blocks only.

Usage: python bench/bench_compliance.py [--checks 400] [--submits 100] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import nats
from table import emit, percentile, row

ACCT = "DU1234567"
NEW_YORK = ZoneInfo("America/New_York")
AAPL = 265598
CONN = "benchc"
BENCH = "compliance"
USER = "bench-user"
_ids = itertools.count(1)
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process `pid` has used so far, in milliseconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5), counted after "(comm)"
    return (utime + stime) * 1000 / _TICKS_PER_S


def _order(cid: str) -> dict[str, Any]:
    return {"client_order_id": cid, "user_id": USER, "account_id": ACCT, "environment": "paper",
            "instrument": {"conid": AAPL}, "side": "BUY", "quantity": "1", "order_type": "LMT",
            "limit_price": "230.00", "tif": "DAY", "position_effect": "open"}


async def _call(nc: Any, subject: str, payload: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    msg = await nc.request(f"ibkr.{CONN}.{subject}", json.dumps(payload).encode(), timeout=timeout)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


def _seed(sim_url: str) -> None:
    """50 positions and 100 executions today (in pairs, so day trades exist)."""
    with httpx.Client(base_url=sim_url + "/sim", verify=False, timeout=10) as sim:
        sim.post("/reset").raise_for_status()
        sim.post("/limits", json={"enabled": False, "clear": True}).raise_for_status()
        positions = [{"conid": 900_000 + i, "symbol": f"BNCH{i:02d}", "sec_type": "STK", "quantity": 10 + i,
                      "avg_price": 50, "market_price": 51} for i in range(50)]
        sim.post(f"/positions/{ACCT}", json=positions).raise_for_status()
        now = datetime.now(UTC)
        midnight = datetime.combine(now.astimezone(NEW_YORK).date(), dt_time(0, 1), NEW_YORK).astimezone(UTC)
        start = max(now - timedelta(minutes=60), midnight)  # today's session in New York, whatever the hour
        trades = [{"time": (start + timedelta(seconds=30 * i)).isoformat(), "conid": 900_000 + (i // 2) % 50,
                   "symbol": f"BNCH{(i // 2) % 50:02d}", "side": "BUY" if i % 2 == 0 else "SELL", "quantity": 1,
                   "price": 51, "order_id": str(7_000_000 + i // 2)} for i in range(100)]
        sim.post(f"/trades/{ACCT}", json=trades).raise_for_status()


async def main_async(args: argparse.Namespace) -> int:
    from cpsim.testing import start_cpsim
    from ibkr_testkit.processes import service_env, start_service
    from ibkr_testkit.servers import start_nats

    sim = start_cpsim(latency=False)  # the benchmark measures our overhead, not the gateway's round trips
    server = start_nats()
    folder = Path(tempfile.mkdtemp(prefix="bench-compliance-"))
    procs = []
    rows: list[dict[str, Any]] = []
    try:
        _seed(sim.url)

        def env(db: str | None, **extra: str) -> dict[str, str]:
            return service_env(nats_url=server.url, database_url=db, conn=CONN, stream="IBKR_EVENTS_BENCHC",
                               stream_subjects=f"ibkr.{CONN}.events.>", gateway_url=sim.url, **extra)

        procs.append(start_service("ibkr_gateway_bridge", env(None, IBKR_RATE_LIMIT_RPS="10000")))
        procs.append(start_service("ibkr_sync_worker", env(f"sqlite+aiosqlite:///{folder}/sync.db",
                                                           IBKR_SYNC_INTERVAL="600000")))
        procs.append(start_service("ibkr_session_keeper", env(f"sqlite+aiosqlite:///{folder}/keeper.db")))
        compliance = start_service("ibkr_compliance",
                                   env(args.database_url or f"sqlite+aiosqlite:///{folder}/compliance.db"))
        procs.append(compliance)
        nc = await nats.connect(server.url)
        assert (await _call(nc, "compliance.acknowledge",
                            {"user_id": USER, "disclosures": ["options_risk", "day_trading_risk"]}))["ok"]
        synced = await _call(nc, "sync.trigger", {"account_id": ACCT}, timeout=120)
        assert synced["ok"], synced
        positions = await _call(nc, "positions.get", {"account_id": ACCT})
        orders = await _call(nc, "orders.get", {"account_id": ACCT})
        n_positions = len(positions["result"]["positions"])
        n_fills = sum(len(o.get("fills") or []) for o in orders["result"]["orders"])
        print(f"state: {n_positions} positions, {len(orders['result']['orders'])} orders, {n_fills} executions")
        assert n_positions == 50 and n_fills >= 100, "the realistic state did not arrive"
        rows += await _checks(nc, args.checks, n_positions, n_fills, compliance.proc.pid)
        rows += await _submits(nc, args.submits, compliance.proc.pid)
        await nc.close()
    finally:
        for p in reversed(procs):
            p.stop()
        server.stop()
        sim.stop()
        shutil.rmtree(folder, ignore_errors=True)
    emit(rows)
    return 0


async def _checks(nc: Any, count: int, n_positions: int, n_fills: int, pid: int) -> list[dict[str, Any]]:
    for _ in range(30):  # warm: contracts, calendars, connections
        reply = await _call(nc, "orders.check", _order(f"bw-{next(_ids)}"))
        assert reply["ok"] and reply["result"]["decision"] != "block", reply
    samples: list[float] = []
    cpu_before = _cpu_ms(pid)
    for _ in range(count):
        payload = json.dumps(_order(f"bc-{next(_ids)}")).encode()
        t = time.perf_counter()
        msg = await nc.request(f"ibkr.{CONN}.orders.check", payload, timeout=10)
        samples.append((time.perf_counter() - t) * 1000)
        assert json.loads(msg.data)["ok"] is True
    cpu = _cpu_ms(pid) - cpu_before
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    state = f"{n_positions} positions, {n_fills} executions, state cache default 2 s"
    return [
        row(BENCH, f"orders.check p50 ({state})", p50, "ms", target="report"),
        row(BENCH, f"orders.check p99 ({state})", p99, "ms", target="< 20 ms", passed=p99 < 20),
        row(BENCH, "compliance CPU per orders.check", cpu / count, "ms", target="report"),
    ]


async def _submits(nc: Any, count: int, pid: int) -> list[dict[str, Any]]:
    submit_ms: list[float] = []
    cpu = 0.0
    direct_ms: list[float] = []
    for _ in range(5):
        await _call(nc, "orders.submit", _order(f"bsw-{next(_ids)}"))
    block = 10
    for _ in range(max(1, count // block)):
        cpu_before = _cpu_ms(pid)
        for _ in range(block):
            payload = json.dumps(_order(f"bs-{next(_ids)}")).encode()
            t = time.perf_counter()
            msg = await nc.request(f"ibkr.{CONN}.orders.submit", payload, timeout=30)
            submit_ms.append((time.perf_counter() - t) * 1000)
            reply = json.loads(msg.data)
            assert reply["ok"] and reply["result"]["status"] == "submitted", reply
        cpu += _cpu_ms(pid) - cpu_before  # the submits only, not the direct placements between them
        for _ in range(block):
            place = {"account_id": ACCT, "orders": [{"conid": AAPL, "side": "BUY", "quantity": "1",
                                                     "order_type": "LMT", "price": "230.00", "tif": "DAY",
                                                     "cOID": f"bd-{next(_ids)}"}]}
            t = time.perf_counter()
            msg = await nc.request(f"ibkr.{CONN}.bridge.orders.place", json.dumps(place).encode(), timeout=30)
            direct_ms.append((time.perf_counter() - t) * 1000)
            reply = json.loads(msg.data)
            assert reply["ok"] and reply["result"]["status"] == "submitted", reply
    s50, d50 = percentile(submit_ms, 50), percentile(direct_ms, 50)
    s99, d99 = percentile(submit_ms, 99), percentile(direct_ms, 99)
    return [
        row(BENCH, "orders.submit p50 vs direct bridge.orders.place", s50, "ms", baseline=d50,
            target="ratio <= 2.5", passed=s50 / d50 <= 2.5),
        row(BENCH, "orders.submit p99 vs direct bridge.orders.place", s99, "ms", baseline=d99, target="report"),
        row(BENCH, "compliance CPU per orders.submit", cpu / len(submit_ms), "ms", target="report"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=400)
    parser.add_argument("--submits", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="100 checks, 40 submits")
    parser.add_argument("--database-url", default=None, help="compliance database (default: SQLite in a temp folder)")
    args = parser.parse_args()
    if args.quick:
        args.checks, args.submits = 100, 40
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
