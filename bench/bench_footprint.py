"""Footprint of each service: CPU per submitted order and per stored event, resident memory after the flows.

Starts the embedded stack as `make run` does (`python -m ibkr_devstack`, in a scratch folder so it
never meets a running `make run`), runs the flows the acceptance checks run (session status, a
sync, order checks and submissions, positions and account reads, audit verify), then reads each
service's CPU time and resident memory from /proc. These are the figures the scale work starts from:
connections per machine follow from memory per service, orders per core from CPU per order.

Usage: python bench/bench_footprint.py [--orders 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from faststream.nats import NatsBroker
from table import emit, row

BENCH = "footprint"
ACCT = "DU1234567"
AAPL = 265598
USER = "bench-user"
TICKS = os.sysconf("SC_CLK_TCK")
SERVICES = ("gateway-bridge", "session-keeper", "sync-worker", "compliance", "audit")


def cpu_ms(pid: int) -> float:
    """User + system CPU time of a process, in milliseconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_stack(folder: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """`make run`'s stack in `folder`; its .var/stack.json once every part is ready."""
    log = (folder / "stack.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "ibkr_devstack"], cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    stack_file = folder / ".var" / "stack.json"
    deadline = time.monotonic() + 180
    while not stack_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the stack did not start:\n{(folder / 'stack.log').read_text()[-2000:]}")
        time.sleep(0.2)
    info: dict[str, Any] = json.loads(stack_file.read_text())
    # make run's cpsim answers with IBKR-like latency; the benchmark measures our own cost, so it is off here
    httpx.post(f"{info['gateway_url']}/sim/latency", json={"enabled": False}, verify=False,
               timeout=10).raise_for_status()
    return proc, info


def stop_stack(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


async def call(broker: NatsBroker, subject: str, payload: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    reply = await broker.request(json.dumps(payload).encode(), subject, timeout=timeout)
    body: dict[str, Any] = json.loads(reply.body)
    return body


def order(n: int, run: str) -> dict[str, Any]:
    return {"client_order_id": f"fp-{run}-{n}", "user_id": USER, "account_id": ACCT, "environment": "paper",
            "instrument": {"conid": AAPL}, "side": "BUY", "quantity": "1", "order_type": "LMT",
            "limit_price": "1.00", "tif": "GTC", "position_effect": "open"}


async def flows(stack: dict[str, Any], orders: int) -> tuple[dict[str, float], int, int]:
    """The acceptance flows; returns the compliance CPU spent on submissions, orders sent, events stored."""
    root = f"ibkr.{stack['connection']}"
    pids = {name: int(pid) for name, pid in stack["pids"].items()}
    broker = NatsBroker(stack["nats_url"])
    await broker.connect()
    try:
        await call(broker, f"{root}.session.status", {})
        await call(broker, f"{root}.compliance.acknowledge",
                   {"user_id": USER, "disclosures": ["options_risk", "day_trading_risk"]})
        await call(broker, f"{root}.sync.trigger", {"account_id": ACCT}, timeout=60)
        for n in range(20):
            await call(broker, f"{root}.orders.check", order(n, "check"))
        run = str(int(time.time()))
        before = {name: cpu_ms(pid) for name, pid in pids.items() if name in SERVICES}
        submitted = 0
        for n in range(orders):
            reply = await call(broker, f"{root}.orders.submit", order(n, run))
            submitted += bool(reply.get("ok"))
        spent = {name: cpu_ms(pids[name]) - before[name] for name in before}
        await call(broker, f"{root}.positions.get", {"account_id": ACCT})
        await call(broker, f"{root}.account.get", {"account_id": ACCT})
        await asyncio.sleep(3)  # the audit consumer drains what the flows published
        verified = await call(broker, f"{root}.audit.verify", {}, timeout=120)
        stored = int((verified.get("result") or {}).get("events_checked") or 0)
        return spent, submitted, stored
    finally:
        await broker.stop()


async def main_async(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    proc, stack = start_stack(folder)
    rows: list[dict[str, Any]] = []
    try:
        pids = {name: int(pid) for name, pid in stack["pids"].items()}
        at_start = {name: rss_mib(pids[name]) for name in SERVICES if name in pids}
        audit_before = cpu_ms(pids["audit"])
        spent, submitted, stored = await flows(stack, args.orders)
        audit_cpu = cpu_ms(pids["audit"]) - audit_before
        if not submitted or not stored:
            raise RuntimeError(f"the flows did not run: {submitted} orders submitted, {stored} events stored")
        rows.append(row(BENCH, f"compliance CPU per submitted order ({submitted} orders)",
                        spent["compliance"] / submitted, "ms", target="report"))
        rows.append(row(BENCH, f"gateway-bridge CPU per submitted order ({submitted} orders)",
                        spent["gateway-bridge"] / submitted, "ms", target="report"))
        rows.append(row(BENCH, f"audit CPU per stored event ({stored} events, whole run)",
                        audit_cpu / stored, "ms", target="report"))
        for name in SERVICES:
            if name in pids:
                rows.append(row(BENCH, f"resident memory after the flows: {name}", rss_mib(pids[name]), "MiB",
                                baseline=at_start[name], target="report (baseline: at start, the floor)"))
    finally:
        stop_stack(proc)
    emit(rows)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=200, help="orders submitted (default 200)")
    parser.add_argument("--quick", action="store_true", help="fewer orders")
    args = parser.parse_args()
    if args.quick:
        args.orders = 40
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
