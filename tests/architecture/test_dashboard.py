"""The Grafana dashboard asks only for metrics the services really export; Prometheus scrapes every service.

Each service's app is built (not started) from its defaults, and the metric names of its own
Prometheus registry are collected (FastStream's middleware metrics, the service's figures); every
metric name in every query of `deploy/grafana/dashboards/ibkr.json` must be among them.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ibkr_common.ops import observability_of
from ibkr_devstack.asyncapi import clean_environment, settings_class
from ibkr_devstack.stack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "ibkr.json"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count"),
            "gauge": ("",), "info": ("_info",), "stateset": ("",), "unknown": ("",)}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and label names left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if expr[match.end():].lstrip().startswith("(") or match.group(0).lower() in PROMQL_KEYWORDS:
            continue
        names.add(match.group(0))
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every query of the dashboard."""
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["expr"]))
    return queries


def exported_names(service: str, tmp_path: Path) -> set[str]:
    """The sample names of one service's registry, its app built from defaults (nothing started)."""
    module = f"ibkr_{service.replace('-', '_')}"
    with clean_environment():
        settings = settings_class(module)(database_url=f"sqlite+aiosqlite:///{tmp_path}/{module}.db")
        app: Any = importlib.import_module(f"{module}.app").build_app(settings)
    names = set()
    for family in observability_of(app).registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    folder = tmp_path_factory.mktemp("registries")
    return {service: exported_names(service, folder) for service in SERVICES}


def test_promql_names_are_found():
    assert metric_names('histogram_quantile(0.95, sum by (le, x) (rate(a_bucket{code!="OK"}[5m])))') == {"a_bucket"}
    assert metric_names("time() - b_seconds") == {"b_seconds"}
    assert metric_names("topk(15, sum by (code) (increase(c_total[1h]))) * 60") == {"c_total"}
    assert metric_names("d == 1 and on (job) e offset 5m") == {"d", "e"}


def test_every_dashboard_query_uses_exported_metrics(exported):
    every = set().union(*exported.values())
    queries = dashboard_queries()
    used = {name: title for title, expr in queries for name in metric_names(expr)}
    assert len(used) >= 30, sorted(used)  # the dashboard covers the figures of every service
    missing = {name: title for name, title in used.items() if name not in every}
    assert not missing, f"dashboard panels query metrics no service exports: {missing}"
    for service, names in exported.items():  # each service's own figures are on the dashboard
        assert {"ibkr_ready", "faststream_received_processed_messages_total"} <= names, service
        own = {n for n in names if n.startswith("ibkr_") and all(n not in other for s, other in exported.items()
                                                                   if s != service)}
        assert own & set(used), f"no panel shows a metric of {service} alone ({sorted(own)})"


def test_the_dashboard_uses_the_provisioned_datasource():
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert all(target["datasource"]["uid"] == uid for target in panel["targets"]), panel["title"]


def test_prometheus_scrapes_every_service_on_port_8080():
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
               for job in config["scrape_configs"]}
    # authz runs in the production topology only (docker-compose.yml), not under `make run`; the console serves
    # its metrics on 8080 there too (its pages on 8000)
    assert targets == {service: [f"{service}:8080"] for service in (*SERVICES, "authz", "console")}
