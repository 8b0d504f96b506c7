"""Dependencies are bounded where their authors promise nothing, and the known httpx trap stays fixed.

- A 0.x package may break its API in any minor release: every dependency whose locked version (or
  whose lower bound) is 0.x has an upper bound in every pyproject that names it.
- httpcore imports `sniffio` on every request when it is missing (about 15% of each HTTP call):
  every project that depends on httpx depends on sniffio too.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = sorted([ROOT / "pyproject.toml", *ROOT.glob("libs/*/pyproject.toml"),
                     *ROOT.glob("services/*/pyproject.toml"), *ROOT.glob("tools/*/pyproject.toml")])
UPPER_OPERATORS = frozenset({"<", "<=", "==", "~=", "==="})


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _locked_versions() -> dict[str, Version]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {_canonical(p["name"]): Version(p["version"]) for p in lock["package"] if "version" in p}


def _workspace_members() -> set[str]:
    return {_canonical(tomllib.loads(path.read_text())["project"]["name"]) for path in PYPROJECTS}


def _requirements(path: Path) -> list[Requirement]:
    data = tomllib.loads(path.read_text())
    texts = list(data.get("project", {}).get("dependencies", []))
    for group in data.get("dependency-groups", {}).values():
        texts.extend(t for t in group if isinstance(t, str))
    return [Requirement(text) for text in texts]


def unbounded_zero_versions(requirements: list[Requirement], locked: dict[str, Version],
                            members: set[str]) -> list[str]:
    """The requirements that may resolve to a 0.x release and have no upper bound."""
    found = []
    for req in requirements:
        name = _canonical(req.name)
        if name in members:
            continue
        lower_zero = any(Version(spec.version).major == 0 for spec in req.specifier if spec.operator == ">=")
        locked_zero = name in locked and locked[name].major == 0
        bounded = any(spec.operator in UPPER_OPERATORS for spec in req.specifier)
        if (lower_zero or locked_zero) and not bounded:
            found.append(str(req))
    return found


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: p.parent.relative_to(ROOT).as_posix() or "root")
def test_every_zero_version_dependency_has_an_upper_bound(path: Path) -> None:
    unbounded = unbounded_zero_versions(_requirements(path), _locked_versions(), _workspace_members())
    assert not unbounded, f"{path.relative_to(ROOT)}: give these an upper bound (next minor): {unbounded}"


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: p.parent.relative_to(ROOT).as_posix() or "root")
def test_every_project_that_uses_httpx_depends_on_sniffio(path: Path) -> None:
    names = {_canonical(req.name) for req in _requirements(path)}
    assert "httpx" not in names or "sniffio" in names, f"{path.relative_to(ROOT)}: add sniffio beside httpx"


def test_the_bound_check_finds_an_unbounded_zero_version() -> None:
    locked = {"faststream": Version("0.7.8"), "pydantic": Version("2.14.3")}
    requirements = [Requirement("faststream[nats]>=0.6"), Requirement("pydantic>=2.9"),
                    Requirement("httpx>=0.27"), Requirement("uvicorn>=0.32,<0.55")]
    assert unbounded_zero_versions(requirements, locked, set()) == ["faststream[nats]>=0.6", "httpx>=0.27"]
