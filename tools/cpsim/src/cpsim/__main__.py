"""`python -m cpsim --port 5000 [--host 127.0.0.1] [--http] [--seed 42] [--region us|eu|asia]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from decimal import Decimal

import uvicorn

from cpsim.app import build_app
from cpsim.config import REGION_TZ, SimConfig
from cpsim.tls import TemporaryCertificate


def parse_args(argv: list[str] | None = None) -> SimConfig:
    """Command-line flags -> SimConfig."""
    p = argparse.ArgumentParser(prog="cpsim", description="IBKR Client Portal Gateway simulator")
    p.add_argument("--port", type=int, default=5000, help="0 picks a free port (printed on the ready line)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--region", choices=sorted(REGION_TZ), default="us")
    p.add_argument("--market-hours", choices=["always", "rth"], default="always")
    p.add_argument("--no-walk", action="store_true", help="prices only move through /sim/prices")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds (sim clock)")
    p.add_argument("--penalty", type=float, default=600.0, help="penalty-box seconds after a 429")
    p.add_argument("--partial-fill-threshold", type=int, default=1000)
    a = p.parse_args(argv)
    return SimConfig(
        host=a.host,
        port=a.port,
        https=not a.http,
        seed=a.seed,
        region=a.region,
        market_hours=a.market_hours,
        walk=not a.no_walk,
        idle_timeout_s=a.idle_timeout,
        penalty_s=a.penalty,
        partial_fill_threshold=Decimal(a.partial_fill_threshold),
    )


async def serve(config: SimConfig) -> None:
    """Run until SIGINT/SIGTERM; prints `cpsim listening on <url>` once ready."""
    tls = TemporaryCertificate(config.host) if config.https else None
    server = uvicorn.Server(
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
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.02)
        if tls is not None:
            tls.remove()  # loaded into the server's TLS context; nothing reads the files again
        port = config.port
        for srv in server.servers:
            for sock in srv.sockets:
                port = sock.getsockname()[1]
        scheme = "https" if config.https else "http"
        print(f"cpsim listening on {scheme}://{config.host}:{port}", flush=True)
        await task
    finally:
        if tls is not None:
            tls.remove()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    try:
        asyncio.run(serve(parse_args(argv)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
