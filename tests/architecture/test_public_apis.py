"""Our dependencies are used through their public APIs only (PERFORMANCE.md's principle).

The project's source (services, libs, tools, bench and every test) is read as Python syntax trees
and each of these fails the test:

- a `_`-prefixed attribute (dunders excepted) that the project itself never defines, read directly
  or through `getattr`/`setattr`/`hasattr` with a string: it can only be a dependency's private part;
- an attribute the dependencies' documentation does not publish (`UNPUBLISHED`);
- an import of a dependency's internal module (a `_`-prefixed module name);
- a class derived from a dependency's class whose documentation does not invite it
  (`INVITED_BASES` lists the ones that do).

`ALLOWED` is the short list of exceptions where no public way exists, each with its reason and the
upstream issue.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN_PACKAGES = {
    "ibkr_common", "ibkr_testkit", "ibkr_devstack", "cpsim", "ibkr_gateway_bridge", "ibkr_session_keeper",
    "ibkr_sync_worker", "ibkr_compliance", "ibkr_audit", "ibkr_contract", "ibkr_client", "ibkr_console",
    "conftest", "audit_helpers", "compliance_stack", "sync_factories", "bench_common", "table", "ibkr_authz",
}
#: Attributes that exist on dependency objects but that their documentation does not publish.
UNPUBLISHED = {"positiontup", "escaped_bind_names", "connection_state", "bind_names", "_process_msg"}
#: Dependency base classes whose documentation invites subclassing.
INVITED_BASES = {
    "pydantic.BaseModel", "pydantic.RootModel", "pydantic_settings.BaseSettings",
    "pydantic_settings.PydanticBaseSettingsSource", "pydantic_settings.EnvSettingsSource",
    "sqlalchemy.orm.DeclarativeBase", "sqlalchemy.types.TypeDecorator", "sqlalchemy.TypeDecorator",
    "httpx.AsyncBaseTransport", "httpx.Auth",
    "faststream.BaseMiddleware", "faststream.middlewares.BaseMiddleware",
    "starlette.middleware.base.BaseHTTPMiddleware", "yaml.SafeLoader",
    "prometheus_client.registry.Collector",  # its README's "Custom Collectors" section
    "nats_callout.BaseAuthCalloutService",  # its README's usage: subclass it, implement _handle_auth_request_data
}
#: (path suffix, attribute or module) -> why no public way exists, with the upstream issue.
ALLOWED: dict[tuple[str, str], str] = {}
SCANNED = ("services", "libs", "tools", "bench", "tests")


def python_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if ".venv" in path.parts or ("migrations" in path.parts and "versions" in path.parts):
                continue
            yield path


def parse_all() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), filename=str(path)) for path in python_files()}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def names_defined_by_project(trees: dict[Path, ast.Module]) -> set[str]:
    """Every `_name` the project defines: functions, classes, assigned attributes, parameters, fields."""
    defined: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, ast.arg) or (isinstance(node, ast.keyword) and node.arg):
                defined.add(node.arg)
    return {name for name in defined if is_private(name)}


def third_party(module: str) -> bool:
    top = module.split(".", 1)[0]
    return bool(top) and top not in OWN_PACKAGES and top not in sys.stdlib_module_names


def imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin, for names imported from other modules."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".", 1)[0]] = alias.name if alias.asname else \
                    alias.name.split(".", 1)[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def dotted(node: ast.expr, imports: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return imports.get(node.id)
    if isinstance(node, ast.Attribute):
        base = dotted(node.value, imports)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript):
        return dotted(node.value, imports)
    return None


def violations(trees: dict[Path, ast.Module]) -> list[str]:
    own_private = names_defined_by_project(trees)
    found: list[str] = []
    for path, tree in trees.items():
        where = path.relative_to(ROOT).as_posix()
        imports = imported_names(tree)

        def report(node: ast.AST, what: str, key: str, where: str = where) -> None:
            if not any(where.endswith(suffix) and key == name for suffix, name in ALLOWED):
                found.append(f"{where}:{getattr(node, 'lineno', 0)}: {what}")

        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                if node.attr in UNPUBLISHED:
                    report(node, f"unpublished attribute .{node.attr}", node.attr)
                elif is_private(node.attr) and node.attr not in own_private:
                    report(node, f"private attribute .{node.attr} of a dependency", node.attr)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2:
                name = node.args[1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str) and (
                        name.value in UNPUBLISHED or (is_private(name.value) and name.value not in own_private)):
                    report(node, f"{node.func.id}(..., {name.value!r}) reaches a private attribute", name.value)
            elif isinstance(node, ast.ImportFrom | ast.Import):
                modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if isinstance(node, ast.ImportFrom) and node.level:
                    continue
                for module in modules:
                    if third_party(module) and any(is_private(part) for part in module.split(".")):
                        report(node, f"import of the internal module {module}", module)
                if isinstance(node, ast.ImportFrom) and third_party(node.module or ""):
                    for alias in node.names:
                        if is_private(alias.name):
                            report(node, f"import of the private name {node.module}.{alias.name}", alias.name)
            elif isinstance(node, ast.ClassDef):
                for base in node.bases:
                    origin = dotted(base, imports)
                    if origin and third_party(origin) and origin not in INVITED_BASES:
                        report(node, f"class {node.name} derives from the dependency class {origin}", origin)
    return found


def test_no_private_api_of_any_dependency():
    found = violations(parse_all())
    assert not found, "dependencies used through their private parts:\n" + "\n".join(found)


def test_the_scanner_sees_each_kind_of_violation():
    """The rules themselves: each kind of private use in a sample is reported, public use is not."""
    sample = ast.parse(
        "import httpx\n"
        "from nats.aio.client import Client\n"
        "from httpx._transports.default import AsyncHTTPTransport\n"
        "from pydantic import BaseModel\n"
        "class Lean(Client): ...\n"
        "class Fine(BaseModel): ...\n"
        "def f(sub, broker, stmt):\n"
        "    a = sub._id\n"
        "    b = getattr(sub, '_pending_size')\n"
        "    c = broker.config.connection_state\n"
        "    d = stmt.positiontup\n"
        "    e = broker.connection\n"
    )
    found = violations({ROOT / "sample.py": sample})
    joined = "\n".join(found)
    for expected in ("._id", "_pending_size", "connection_state", "positiontup", "httpx._transports",
                     "class Lean derives from the dependency class nats.aio.client.Client"):
        assert expected in joined, f"{expected} not reported:\n{joined}"
    assert "Fine" not in joined and ".connection " not in joined
    assert len(found) == 6, joined
