"""`python -m ibkr_console`: serve the operator console (and the operators' /healthz /readyz /metrics)."""

from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from ibkr_common.logs import mask_urls, setup_logging
from ibkr_common.loop import run as run_loop
from ibkr_common.ops.figures import Figures
from ibkr_common.ops.http import OpsServer, bind, ops_app
from ibkr_common.service import migrate_at_start
from ibkr_common.settings import SettingsError, exit_on_bad_settings
from ibkr_console.app import build_app
from ibkr_console.settings import ConsoleSettings

log = logging.getLogger("ibkr_console")


async def serve(settings: ConsoleSettings) -> None:
    """Migrate, then serve the console and the operators' endpoints until SIGTERM/SIGINT."""
    await migrate_at_start(settings)
    app = build_app(settings)
    figures = Figures()
    registry = CollectorRegistry()
    registry.register(figures)
    hub, stack = app.state.hub, app.state.stack
    figures.gauge("ibkr_service_info", "The service, its connection and environment (always 1).",
                  lambda: {("console", settings.connection, settings.default_environment): 1},
                  labels=("service", "connection", "environment"))
    figures.gauge("ibkr_nats_connected", "1 while the NATS connection is up.", lambda: stack.connected)
    figures.gauge("ibkr_console_live_listeners", "Open pages listening for live events.",
                  lambda: sum(len(f.listeners) for f in hub.feeds.values()))
    figures.counter("ibkr_console_live_events", "Events handed to open pages' feeds.",
                    lambda: sum(f.delivered for f in hub.feeds.values()))

    async def health() -> dict[str, object]:
        return {"status": "ok", "service": "console", "connection": settings.connection}

    async def readiness() -> tuple[bool, dict[str, object]]:
        checks = {"nats": stack.connected, "live_feed": any(f.ready.is_set() for f in hub.feeds.values())}
        try:
            async with app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:
            checks["database"] = False
        ready = all(checks.values())
        return ready, {"status": "ok" if ready else "not_ready", "service": "console",
                       "connection": settings.connection,
                       "checks": {k: "ok" if v else "failing" for k, v in checks.items()}}

    async def metrics() -> tuple[bytes, str]:
        await figures.sample()
        return generate_latest(registry), CONTENT_TYPE_LATEST

    ops = OpsServer(ops_app(health, readiness, metrics), settings.http_host, settings.http_port)
    ops_url = await ops.start()
    log.info("http listening on %s", ops_url)
    sock = bind(settings.console_host, settings.console_port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", access_log=False, log_config=None,
                                           log_level="warning", timeout_graceful_shutdown=2))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await ops.stop()
            raise OSError(f"IBKR_CONSOLE_HOST/IBKR_CONSOLE_PORT: the console did not start on port {port}")
        await asyncio.sleep(0.02)
    host = settings.console_host if settings.console_host not in ("0.0.0.0", "::") else "127.0.0.1"
    log.info("console listening on http://%s:%d", host, port)
    log.info("console ready (connection %s, nats %s)", settings.connection, mask_urls(settings.nats_url))
    async def end_streams_on_stop() -> None:  # uvicorn waits for open responses; the event streams never end
        while not server.should_exit:
            await asyncio.sleep(0.1)
        hub.end_streams()

    watcher = asyncio.get_running_loop().create_task(end_streams_on_stop())
    try:
        await task
    finally:
        watcher.cancel()
        await ops.stop()


def main() -> None:
    try:
        settings = exit_on_bad_settings(ConsoleSettings)
    except SettingsError as exc:
        raise SystemExit(2) from exc
    setup_logging("console", settings.log_level, connection=settings.connection, log_format=settings.log_format,
                  secrets=settings.secret_values())
    try:
        run_loop(serve(settings))
    except KeyboardInterrupt:
        pass
    except Exception:
        log.exception("console stopped on an error")
        sys.exit(1)


if __name__ == "__main__":
    main()
