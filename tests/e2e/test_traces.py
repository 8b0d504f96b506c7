"""One `orders.submit` is one trace: compliance, the bridge and the bridge's HTTP call to the gateway.

The four services run in this process on real NATS and cpsim over HTTPS, sharing one OpenTelemetry
TracerProvider whose spans go to an in-memory exporter (the global provider, as `run_service` would
install it with an OTLP exporter). The order is sent by a plain NATS client with no trace context,
so the trace starts at compliance and travels in the NATS headers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import nats
import pytest
from faststream import TestApp
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ibkr_common.db.migrate import upgrade

pytestmark = [pytest.mark.e2e, pytest.mark.connected]
ACCOUNT = "DU1234567"


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (installed here unless a test before did), exporting to memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later spans are dropped


@pytest.fixture
async def stack(spans: InMemorySpanExporter, nats_url: str, cpsim_url: str, run_names: Any, tmp_path: Any
                ) -> AsyncIterator[str]:
    """gateway-bridge, session-keeper, sync-worker and compliance in-process, built once the provider is
    installed (as run_service does); yields the connection id."""
    from ibkr_compliance.app import build_app as build_compliance
    from ibkr_compliance.settings import ComplianceSettings
    from ibkr_gateway_bridge.app import build_app as build_bridge
    from ibkr_gateway_bridge.settings import BridgeSettings
    from ibkr_session_keeper.app import build_app as build_keeper
    from ibkr_session_keeper.settings import SessionKeeperSettings
    from ibkr_sync_worker.app import build_app as build_worker
    from ibkr_sync_worker.settings import SyncSettings

    httpx.post(f"{cpsim_url}/sim/reset", verify=False, json={}, timeout=10).raise_for_status()
    conn = f"{run_names.conn}-tr"
    scheme, rest = cpsim_url.split("://", 1)
    host, port = rest.rsplit(":", 1)
    common: dict[str, Any] = {
        "nats_url": nats_url, "connection": conn, "events_stream": f"{run_names.stream}_TR",
        "events_subjects": f"ibkr.{conn}.events.>", "gateway_host": host, "gateway_port": int(port),
        "gateway_ssl": scheme == "https", "_env_file": None,
    }

    def database(name: str) -> str:
        url = f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
        upgrade(url)
        return url

    apps = [
        build_bridge(BridgeSettings(**common)),
        build_keeper(SessionKeeperSettings(**common, database_url=database("keeper"))),
        build_worker(SyncSettings(**common, database_url=database("sync"), sync_interval_ms=600_000,
                                  options_levels=f"{ACCOUNT}=2")),
        build_compliance(ComplianceSettings(**common, database_url=database("compliance"))),
    ]
    async with AsyncExitStack() as started:
        for app in apps:
            await started.enter_async_context(TestApp(app))
        yield conn


async def _call(nc: Any, subject: str, payload: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads((await nc.request(subject, json.dumps(payload).encode(), timeout=timeout)).data)
    return reply


def _of_trace(spans: list[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


async def test_one_submit_is_one_trace_across_compliance_the_bridge_and_the_http_call(nats_url, stack, spans):
    conn = stack
    root = f"ibkr.{conn}"
    nc = await nats.connect(nats_url)
    try:
        assert (await _call(nc, f"{root}.sync.trigger", {"account_id": ACCOUNT}))["ok"]
        acknowledged = await _call(nc, f"{root}.compliance.acknowledge",
                                   {"user_id": "alice", "disclosures": ["options_risk", "day_trading_risk"]})
        assert acknowledged["ok"], acknowledged
        spans.clear()
        order = {"client_order_id": f"trace-{int(time.time() * 1000)}", "user_id": "alice", "account_id": ACCOUNT,
                 "environment": "paper", "instrument": {"conid": 265598}, "side": "BUY", "quantity": "1",
                 "order_type": "LMT", "limit_price": "230.00", "tif": "DAY", "position_effect": "open"}
        reply = await _call(nc, f"{root}.orders.submit", order)
        assert reply["ok"] and reply["result"]["status"] == "submitted", reply
    finally:
        await nc.close()

    submit_subject, place_subject = f"{root}.orders.submit", f"{root}.bridge.orders.place"
    deadline = time.monotonic() + 10
    while not any(s.name == f"{submit_subject} process" for s in spans.get_finished_spans()):
        assert time.monotonic() < deadline, "compliance's span of orders.submit never ended"
        await asyncio.sleep(0.05)
    finished = list(spans.get_finished_spans())

    submitted = [s for s in finished if s.name == f"{submit_subject} process"]
    assert len(submitted) == 1, [s.name for s in finished]
    assert submitted[0].kind is SpanKind.CONSUMER
    trace_id = submitted[0].context.trace_id
    one_trace = _of_trace(finished, trace_id)
    names = sorted(s.name for s in one_trace)

    sent = [s for s in one_trace if s.name == f"{place_subject} publish" and s.kind is SpanKind.PRODUCER]
    placed = [s for s in one_trace if s.name == f"{place_subject} process" and s.kind is SpanKind.CONSUMER]
    http = [s for s in one_trace if s.kind is SpanKind.CLIENT and s.name == "POST /iserver/account/{accountId}/orders"]
    assert sent and placed and http, names
    assert http[0].attributes["http.response.status_code"] == 200
    assert "DU1234567" not in json.dumps([dict(s.attributes or {}) | {"name": s.name} for s in http])
    by_id = {s.context.span_id: s for s in one_trace}
    ancestors = []
    parent = http[0].parent
    while parent is not None and parent.span_id in by_id:
        ancestors.append(by_id[parent.span_id])
        parent = by_id[parent.span_id].parent
    assert placed[0] in ancestors and submitted[0] in ancestors, "the HTTP call is below the bridge's and " \
        "compliance's spans"
    # nothing of this order's path went into another trace
    strays = [s.name for s in finished if s.context.trace_id != trace_id
              and (place_subject in s.name or submit_subject in s.name or (s.kind is SpanKind.CLIENT
                   and "/orders" in s.name))]
    assert not strays, strays
