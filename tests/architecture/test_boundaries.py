"""Import boundaries and the subject catalogue, checked on the source text."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_PACKAGES = {
    "gateway-bridge": "ibkr_gateway_bridge",
    "session-keeper": "ibkr_session_keeper",
    "sync-worker": "ibkr_sync_worker",
    "compliance": "ibkr_compliance",
    "audit": "ibkr_audit",
}
SUBJECT_LITERAL = re.compile(r"^ibkr\.[a-z0-9*{}-]+\.")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _sources(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.py") if "/tests/" not in str(p)]


def test_common_library_imports_no_service():
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & set(SERVICE_PACKAGES.values()))
        for p in _sources(ROOT / "libs" / "common" / "src")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("service", sorted(SERVICE_PACKAGES))
def test_no_service_imports_another(service):
    others = set(SERVICE_PACKAGES.values()) - {SERVICE_PACKAGES[service]}
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & others)
        for p in _sources(ROOT / "services" / service / "src")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_bridge_talks_http_to_client_portal():
    offenders = []
    for service in SERVICE_PACKAGES:
        if service == "gateway-bridge":
            continue
        for p in _sources(ROOT / "services" / service / "src"):
            if "httpx" in _imports(p):
                offenders.append(str(p.relative_to(ROOT)))
    assert offenders == []


def test_services_build_subjects_only_from_the_catalogue():
    offenders = []
    for service in SERVICE_PACKAGES:
        for p in _sources(ROOT / "services" / service / "src"):
            for node in ast.walk(ast.parse(p.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and SUBJECT_LITERAL.match(node.value):
                    offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
                if isinstance(node, ast.JoinedStr):
                    head = node.values[0] if node.values else None
                    if isinstance(head, ast.Constant) and str(head.value).startswith("ibkr."):
                        offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}: f-string subject")
    assert offenders == []
