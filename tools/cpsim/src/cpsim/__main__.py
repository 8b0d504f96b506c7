"""`python -m cpsim --port 5000 [--host 127.0.0.1] [--http] [--seed 42] [--region us|eu|asia] ...`.

One process may serve several gateways, each on its own port with its own login, session, accounts,
orders, rate-limit buckets, request log and /sim control API: `--gateway paper:5000 --gateway live:5001`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import sys
from decimal import Decimal

import uvicorn

from cpsim import hours
from cpsim.app import build_app
from cpsim.config import REGION_TZ, SimConfig
from cpsim.hours import normalise_mode
from cpsim.tls import TemporaryCertificate

GATEWAY_SPEC = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_-]{0,31}):(?P<port>\d{1,5})(?::(?P<accounts>[A-Za-z0-9,]+))?$")


def gateway_config(spec: str, base: SimConfig) -> SimConfig:
    """`NAME:PORT[:ACCOUNT[,ACCOUNT...]]` -> the gateway's SimConfig (the other settings from `base`).

    Accounts default to `DU1234567`; the login's username is `<name>user1` (`paperuser1` for `paper`).
    """
    m = GATEWAY_SPEC.match(spec)
    if m is None or int(m["port"]) > 65535:
        raise ValueError(f"--gateway {spec!r}: expected NAME:PORT[:ACCOUNT[,ACCOUNT...]], e.g. live:5001:U1234567")
    accounts = tuple(a for a in (m["accounts"] or "").split(",") if a) or base.accounts
    return dataclasses.replace(base, name=m["name"], port=int(m["port"]), accounts=accounts,
                               username=f"{m['name'].lower()}user1")


def parse_gateways(argv: list[str] | None = None) -> list[SimConfig]:
    """Command-line flags -> one SimConfig per gateway (one, unless `--gateway` is repeated)."""
    p = argparse.ArgumentParser(prog="cpsim", description="IBKR Client Portal Gateway simulator")
    p.add_argument("--port", type=int, default=None, help="default 5000; 0: a free port (on the ready line)")
    p.add_argument("--gateway", action="append", default=[], metavar="NAME:PORT[:ACCOUNTS]",
                   help="serve one more gateway (repeatable; replaces --port), e.g. live:5001:U1234567")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--region", choices=sorted(REGION_TZ), default="us")
    p.add_argument("--market-hours", choices=["exchange", "always", "rth"], default="exchange",
                   help="exchange (default): orders work in NYSE sessions, 09:30-16:00 New York (13:00 on "
                        "early closes, none on holidays); always: around the clock")
    p.add_argument("--no-latency", action="store_true", help="answer at once (benchmarks, fast tests)")
    p.add_argument("--latency-scale", type=float, default=1.0, help="multiplies the per-endpoint latency model")
    p.add_argument("--no-walk", action="store_true", help="prices only move through /sim/prices")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds (sim clock)")
    p.add_argument("--penalty", type=float, default=600.0, help="penalty-box seconds after a 429")
    p.add_argument("--partial-fill-threshold", type=int, default=1000)
    a = p.parse_args(argv)
    if a.gateway and a.port is not None:
        p.error("--port and --gateway exclude each other: give each gateway its port")
    if a.latency_scale < 0:
        p.error("--latency-scale must be at least 0")
    base = SimConfig(
        host=a.host,
        port=5000 if a.port is None else a.port,
        https=not a.http,
        seed=a.seed,
        region=a.region,
        market_hours=normalise_mode(a.market_hours),
        walk=not a.no_walk,
        latency=not a.no_latency,
        latency_scale=a.latency_scale,
        idle_timeout_s=a.idle_timeout,
        penalty_s=a.penalty,
        partial_fill_threshold=Decimal(a.partial_fill_threshold),
    )
    if not a.gateway:
        return [base]
    try:
        configs = [gateway_config(spec, base) for spec in a.gateway]
    except ValueError as exc:
        p.error(str(exc))
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        p.error("--gateway names must differ")
    ports = [c.port for c in configs if c.port]
    if len(set(ports)) != len(ports):
        p.error("--gateway ports must differ")
    return configs


def parse_args(argv: list[str] | None = None) -> SimConfig:
    """Command-line flags -> the SimConfig of the first (usually only) gateway."""
    return parse_gateways(argv)[0]


def _server(config: SimConfig, tls: TemporaryCertificate | None) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            build_app(config),
            host=config.host,
            port=config.port,
            access_log=False,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ssl_certfile=None if tls is None else str(tls.cert),
            ssl_keyfile=None if tls is None else str(tls.key),
        )
    )


def _port(server: uvicorn.Server, default: int) -> int:
    for srv in server.servers:
        for sock in srv.sockets:
            return int(sock.getsockname()[1])
    return default


async def serve(config: SimConfig | list[SimConfig]) -> None:
    """Run until SIGINT/SIGTERM; prints `cpsim listening on <url>` once every gateway is ready.

    With several gateways each first prints `cpsim gateway <name> listening on <url>`; the last line
    names the first gateway's URL.
    """
    configs = config if isinstance(config, list) else [config]
    if any(c.market_hours == "exchange" for c in configs):
        hours.warm_up()  # the exchange calendar loads while the servers start, not on the first order
    first = configs[0]
    tls = TemporaryCertificate(first.host) if first.https else None
    servers = [_server(c, tls) for c in configs]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    try:
        while not all(s.started for s in servers):
            for task in tasks:
                if task.done():
                    for s in servers:
                        s.should_exit = True
                    await asyncio.gather(*tasks, return_exceptions=True)
                    await task
                    return
            await asyncio.sleep(0.02)
        if tls is not None:
            tls.remove()  # loaded into the servers' TLS contexts; nothing reads the files again
        scheme = "https" if first.https else "http"
        urls = [f"{scheme}://{c.host}:{_port(s, c.port)}" for c, s in zip(configs, servers, strict=True)]
        if len(configs) > 1:
            for c, url in zip(configs, urls, strict=True):
                print(f"cpsim gateway {c.name} listening on {url}", flush=True)
        print(f"cpsim listening on {urls[0]}", flush=True)
        await asyncio.gather(*tasks)
    finally:
        if tls is not None:
            tls.remove()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    try:
        asyncio.run(serve(parse_gateways(argv)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
