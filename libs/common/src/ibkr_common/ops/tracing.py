"""Traces: OpenTelemetry, off unless an OTLP collector is configured.

Libraries and services use the OpenTelemetry API only (`tracer(name)`, FastStream's telemetry
middleware); the process's entry point (`run_service`, one service a process) installs the SDK's
TracerProvider when `IBKR_OTLP_ENDPOINT` or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, exporting in batches over OTLP/HTTP, before the app is
built. Without one nothing is traced: the brokers get no telemetry middleware (`tracing_on`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from ibkr_common.settings import CommonSettings

log = logging.getLogger("ibkr_common.ops.tracing")
STANDARD_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACES_PATH = "/v1/traces"


def tracer(name: str) -> trace.Tracer:
    """A tracer of the process's provider (the no-op one until tracing is configured)."""
    return trace.get_tracer(name)


def tracing_on() -> bool:
    """Whether this process records spans: an SDK provider is the global one (`configure_tracing`, or a
    test's). While it is not, the brokers carry no telemetry middleware at all: with the no-op provider it
    would still cost about a third of a request's CPU (extracting and injecting headers, no-op spans)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def otlp_traces_endpoint(settings: CommonSettings) -> str | None:
    """The OTLP/HTTP traces URL to export to: IBKR_OTLP_ENDPOINT (a base URL, `/v1/traces` added), else
    None when neither it nor a standard OTEL_EXPORTER_OTLP_* variable is set (the exporter reads those)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if settings.otlp_endpoint:
        base = settings.otlp_endpoint.rstrip("/")
        return base if base.endswith(TRACES_PATH) else base + TRACES_PATH
    if any(os.environ.get(name) for name in STANDARD_ENDPOINTS):
        return ""  # the exporter resolves the standard variables itself
    return None


def configure_tracing(settings: CommonSettings, service: str) -> TracerProvider | None:
    """Install the SDK's provider exporting over OTLP/HTTP when configured; returns it (None: tracing off).

    Call once per process, from its entry point (OpenTelemetry's global provider can be set once)."""
    endpoint = otlp_traces_endpoint(settings)
    if endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"ibkr-{service}", "service.namespace": "ibkr-stack",
                                "ibkr.connection": settings.connection})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint or None)))
    trace.set_tracer_provider(provider)
    log.info("traces exported over OTLP/HTTP to %s", endpoint or "the OTEL_EXPORTER_OTLP_* endpoint")
    return provider
