"""Import boundaries and the subject catalogue, checked on the source text."""

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_PACKAGES = {
    "gateway-bridge": "ibkr_gateway_bridge",
    "session-keeper": "ibkr_session_keeper",
    "sync-worker": "ibkr_sync_worker",
    "compliance": "ibkr_compliance",
    "audit": "ibkr_audit",
    "console": "ibkr_console",
}
ROOT_TOKEN = "ibkr"
SUBJECT_LITERAL = re.compile(r"^ibkr\.[a-z0-9*{}%-]+\.")
CATALOGUE = ROOT / "libs" / "common" / "src" / "ibkr_common" / "subjects.py"
#: The public part of the catalogue (the contract); the common one adds the internal bridge subjects.
PUBLIC_CATALOGUE = ROOT / "libs" / "contract" / "src" / "ibkr_contract" / "subjects.py"


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


@pytest.mark.parametrize(("lib", "allowed"), [
    ("contract", {"ibkr_contract", "pydantic", "pydantic_core"}),
    ("client", {"ibkr_client", "ibkr_contract", "pydantic", "nats", "typer", "rich"}),
])
def test_the_contract_and_the_client_import_only_what_they_declare(lib, allowed):
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) - allowed - set(sys.stdlib_module_names))
        for p in _sources(ROOT / "libs" / lib / "src")
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


def _str_head(node: ast.AST) -> str | None:
    """The leading literal text of an expression that builds a string, if it starts with one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return _str_head(node.values[0]) if node.values else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _str_head(node.left)
    return None


def _names_root(node: ast.AST) -> bool:
    """`ROOT` / `subjects.ROOT`: the catalogue's root token, used to build a subject outside it."""
    return (isinstance(node, ast.Name) and node.id == "ROOT") or (
        isinstance(node, ast.Attribute) and node.attr == "ROOT"
    )


def _starts_like_a_subject(text: str | None) -> bool:
    return text is not None and (text == ROOT_TOKEN or text.startswith(ROOT_TOKEN + "."))


def subject_offenders(source: str, name: str = "<source>") -> list[str]:
    """Places in `source` that spell a NATS subject instead of asking the catalogue for it."""
    offenders = []
    for node in ast.walk(ast.parse(source)):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SUBJECT_LITERAL.match(node.value):
            offenders.append(f"{where}: {node.value!r}")
        elif isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if _starts_like_a_subject(_str_head(head)) or (
                isinstance(head, ast.FormattedValue) and _names_root(head.value)
            ):
                offenders.append(f"{where}: f-string subject")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = node.left
            while isinstance(left, ast.BinOp) and isinstance(left.op, ast.Add):
                left = left.left
            if _starts_like_a_subject(_str_head(left)) or _names_root(left):
                offenders.append(f"{where}: subject built by concatenation")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            if _starts_like_a_subject(_str_head(node.left)):
                offenders.append(f"{where}: subject built with %")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("join", "format")
            and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str)
        ):
            if node.func.attr == "format":
                if _starts_like_a_subject(node.func.value.value):
                    offenders.append(f"{where}: subject built with str.format")
                continue
            if node.func.value.value != "." or not node.args:
                continue
            parts = node.args[0]
            if isinstance(parts, (ast.List, ast.Tuple)) and parts.elts:
                first = parts.elts[0]
                if _starts_like_a_subject(_str_head(first)) or _names_root(first):
                    offenders.append(f"{where}: subject built with '.'.join")
    return offenders


def _subject_scan_roots() -> list[Path]:
    roots = [ROOT / "services" / service / "src" for service in SERVICE_PACKAGES]
    roots.extend(ROOT / "libs" / lib / "src" for lib in ("common", "contract", "client"))
    roots.extend(sorted(p for p in (ROOT / "tools").glob("*/src") if p.is_dir()))
    return roots


def test_the_scan_covers_services_common_and_tools():
    scanned = {str(p.relative_to(ROOT)) for root in _subject_scan_roots() for p in _sources(root)}
    assert "libs/common/src/ibkr_common/settings.py" in scanned
    assert "tools/testkit/src/ibkr_testkit/plugin.py" in scanned
    assert "tools/devstack/src/ibkr_devstack/stack.py" in scanned
    assert "libs/client/src/ibkr_client/__init__.py" in scanned
    assert CATALOGUE.exists() and PUBLIC_CATALOGUE.exists()


def test_subjects_are_built_only_by_the_catalogue():
    offenders = []
    for root in _subject_scan_roots():
        for p in _sources(root):
            if p in (CATALOGUE, PUBLIC_CATALOGUE):
                continue
            offenders.extend(subject_offenders(p.read_text(), str(p.relative_to(ROOT))))
    assert offenders == []


@pytest.mark.parametrize(
    "source",
    [
        's = "ibkr.paper.orders.submit"',
        's = "ibkr.*.events.>"',
        's = f"ibkr.{conn}.events.>"',
        's = f"{ROOT}.{conn}.events.>"',
        's = "ibkr." + conn + ".events.>"',
        's = "ibkr" + "." + conn',
        's = ROOT + "." + conn',
        's = subjects.ROOT + ".x"',
        's = ".".join(["ibkr", conn, "events", ">"])',
        's = ".".join(("ibkr", conn))',
        's = ".".join([ROOT, conn])',
        's = "ibkr.%s.events.>" % conn',
        's = "ibkr.{}.events.>".format(conn)',
    ],
)
def test_the_subject_check_catches_each_way_of_spelling_one(source):
    assert subject_offenders(source) != []


@pytest.mark.parametrize(
    "source",
    [
        'log = logging.getLogger("ibkr_common.streams")',
        'name = f"ibkr-{service}-{conn}"',
        'table = "ibkr_orders"',
        'salt = b"ibkr-stack/credentials/v1"',
        's = Subjects(conn).events_all',
        'path = "/".join(["ibkr", "x"])',
        'text = "ibkr" ',
    ],
)
def test_the_subject_check_leaves_other_strings_alone(source):
    assert subject_offenders(source) == []
