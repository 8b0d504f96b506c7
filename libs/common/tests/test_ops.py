"""/healthz, /readyz and /metrics of a service built with `observe` (real NATS, SQLite or a dead database)."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import httpx
import pytest
from faststream import FastStream, TestApp
from faststream.nats import NatsRouter

from ibkr_common.db.engine import make_engine
from ibkr_common.ops import observability_of, observe
from ibkr_common.replies import ok, reply_middleware
from ibkr_common.service import make_broker
from ibkr_common.settings import CommonSettings

pytestmark = pytest.mark.connected


def _app(nats_url: str, service: str, database_url: str | None = None, **settings: Any) -> tuple[FastStream, str]:
    subject = f"test.ops.{uuid.uuid4().hex[:8]}"
    config = CommonSettings(nats_url=nats_url, connection="opstest", _env_file=None, **settings)
    broker = make_broker(config, service)
    router = NatsRouter(middlewares=[reply_middleware()])

    @router.subscriber(subject)
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return ok(body)

    broker.include_router(router)
    app = FastStream(broker)
    observe(app, broker, config, service, database=make_engine(database_url) if database_url else None)
    return app, subject


async def test_endpoints_of_a_running_service(nats_url, nats_client, tmp_path):
    app, subject = _app(nats_url, "svc-a", f"sqlite+aiosqlite:///{tmp_path}/a.db")
    ops = observability_of(app)
    ready, body = await ops.readiness()
    assert not ready and body["checks"]["nats"] == "failing" and body["checks"]["started"] == "failing"
    async with TestApp(app), httpx.AsyncClient(base_url=str(ops.url), timeout=5) as http:
        health = await http.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "service": "svc-a", "connection": "opstest"}
        ready_reply = await http.get("/readyz")
        assert ready_reply.status_code == 200, ready_reply.text
        assert ready_reply.json()["checks"] == {"nats": "ok", "started": "ok", "database": "ok"}
        await nats_client.request(subject, b'{"n": 1}', timeout=5)
        metrics = (await http.get("/metrics")).text
        assert f'faststream_received_processed_messages_total{{app_name="svc-a",broker="nats",handler="{subject}",' \
               'status="acked"} 1.0' in metrics
        assert 'ibkr_service_info{connection="opstest",environment="paper",service="svc-a"} 1.0' in metrics
        assert "ibkr_ready 1.0" in metrics and 'ibkr_ready_check{check="database"} 1.0' in metrics
        assert "_created" not in metrics
        url = ops.url
    assert ops.url is None and not ops.started
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


async def test_a_database_that_does_not_answer_makes_the_service_not_ready_but_alive(nats_url):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    app, _ = _app(nats_url, "svc-b", f"postgresql+psycopg://app:pw@127.0.0.1:{dead}/nothing")
    ops = observability_of(app)
    async with TestApp(app), httpx.AsyncClient(base_url=str(ops.url), timeout=5) as http:
        assert (await http.get("/healthz")).status_code == 200
        reply = await http.get("/readyz")
        assert reply.status_code == 503
        assert reply.json()["status"] == "not_ready"
        assert reply.json()["checks"] == {"nats": "ok", "started": "ok", "database": "failing"}
        assert 'ibkr_ready_check{check="database"} 0.0' in (await http.get("/metrics")).text


async def test_details_are_shown_and_never_hold_readiness_back(nats_url):
    app, _ = _app(nats_url, "svc-c")
    ops = observability_of(app)
    ops.detail("gateway", lambda: {"reachable": False, "authenticated": None})
    async with TestApp(app), httpx.AsyncClient(base_url=str(ops.url), timeout=5) as http:
        reply = await http.get("/readyz")
        assert reply.status_code == 200
        assert reply.json()["gateway"] == {"reachable": False, "authenticated": None}
        assert (await http.get("/healthz")).json()["gateway"] == {"reachable": False, "authenticated": None}


async def test_each_service_has_its_own_registry(nats_url, nats_client):
    first, subject = _app(nats_url, "svc-d")
    second, _ = _app(nats_url, "svc-e")
    async with TestApp(first), TestApp(second), httpx.AsyncClient(timeout=5) as http:
        await nats_client.request(subject, b"{}", timeout=5)
        one = (await http.get(f"{observability_of(first).url}/metrics")).text
        other = (await http.get(f"{observability_of(second).url}/metrics")).text
    assert 'app_name="svc-d"' in one and 'app_name="svc-e"' not in one
    assert subject not in other


async def test_a_taken_port_is_a_clear_error(nats_url):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        app, _ = _app(nats_url, "svc-f", http_port=squatter.getsockname()[1])
        with pytest.raises(OSError, match="IBKR_HTTP_PORT"):
            async with TestApp(app):
                pass
