"""The repository stands alone: nothing in it reads material kept beside the clone or at a machine's path.

CI runs on a clone with the design material in a folder beside it, so a test that reads `../shared/...`
would pass there and fail on any other clone: only this check catches such a reference. The recordings,
the OpenAPI document and the compliance example cases the tests use are kept in the repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve()

#: Folders that are not the repository's own content (tool caches, the environment, run-time state).
SKIPPED_DIRS = frozenset({".git", ".venv", ".var", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__",
                          "node_modules", "build", "dist"})
#: Text files checked; markdown is prose (only the shared-material rule applies to it).
CODE_SUFFIXES = frozenset({".py", ".toml", ".cfg", ".ini", ".sh", ".yml", ".yaml", ".json", ".conf", ".txt",
                           ".example", ".lock", ".mako"})
CODE_NAMES = frozenset({"Makefile", "Dockerfile", "run"})
PROSE_SUFFIXES = frozenset({".md"})

#: The material kept beside the clone (design notes, recordings, cases, checks), by any relative path,
#: also when a path is joined from pieces (`root.parent / "shared" / "cpapi"`, `os.path.join(.., "shared")`).
SHARED_MATERIAL = re.compile(
    r"\.\./shared\b|\bshared/(?:cpapi|compliance|design|checks|seed|hooks)\b"
    r"|/\s*[\"']shared[\"']|[\"']shared[\"']\s*[/,)]"
)
#: A host path: a workplace, a temporary folder or a home directory written into the code. URL paths
#: (`https://host/tmp/`) and relative ones (`./tmp/`) do not count.
HOST_PATH = re.compile(r"(?<![\w.:/~-])/(?:work|tmp|home|root|mnt|Users|private/var)/")


def _repository_files() -> Iterator[Path]:
    stack = [ROOT]
    while stack:
        folder = stack.pop()
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                if entry.name not in SKIPPED_DIRS and not entry.name.endswith(".egg-info"):
                    stack.append(entry)
            elif entry.resolve() != THIS:
                yield entry


def _kind(path: Path) -> str | None:
    if path.suffix in PROSE_SUFFIXES:
        return "prose"
    if path.suffix in CODE_SUFFIXES or path.name in CODE_NAMES or path.name.startswith("Dockerfile"):
        return "code"
    return None


def offending_lines(text: str, kind: str, container_paths: bool = False) -> list[tuple[int, str]]:
    """(line number, line) of every reference to shared material, or to a host path in code.

    `container_paths`: the file describes a container's filesystem (a Dockerfile), where absolute
    paths are the image's own and allowed.
    """
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if SHARED_MATERIAL.search(line) or (
            kind == "code" and not container_paths and HOST_PATH.search(line)
        ):
            found.append((number, line.strip()[:160]))
    return found


def _offences() -> list[str]:
    offences = []
    for path in _repository_files():
        kind = _kind(path)
        if kind is None:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        container = path.name.startswith("Dockerfile")
        for number, line in offending_lines(text, kind, container_paths=container):
            offences.append(f"{path.relative_to(ROOT)}:{number}: {line}")
    return offences


def test_nothing_refers_to_material_beside_the_clone_or_to_a_host_path():
    offences = _offences()
    assert not offences, "the repository must stand alone; keep a copy in the repository instead:\n" + "\n".join(
        offences
    )


def test_the_checked_files_include_the_code_the_makefile_and_the_pyprojects():
    checked = {path.relative_to(ROOT).as_posix() for path in _repository_files() if _kind(path) == "code"}
    assert {"Makefile", "pyproject.toml", "libs/common/pyproject.toml", ".ci/run",
            "services/compliance/tests/conftest.py", "tools/cpsim/tests/test_openapi_schemas.py"} <= checked


@pytest.mark.parametrize("line", [
    'EXAMPLES = repo_root().parent / "shared" / "compliance" / "cases-examples.yaml"',
    'SPEC = os.path.join(ROOT, "..", "shared", "cpapi")',
    "RECORDINGS = Path('../shared/cpapi/recordings')",
    "see shared/design/CONTRACT.md",
    'SPEC = "/work/shared/cpapi/openapi-v2.24.0.json"',
    "cat /tmp/ibkr-cases.yaml",
    "open('/home/dev/notes.txt')",
])
def test_the_check_finds_a_reference(line: str) -> None:
    assert offending_lines(line, "code") == [(1, line)]


@pytest.mark.parametrize("line", [
    "url = 'https://example.com/tmp/x'",
    "RUN --mount=type=cache,target=/root/.cache/uv uv sync",
    "the shared calendar (loading it takes a second)",
    "tmp_path / 'ibkr.db'",
])
def test_the_check_lets_ordinary_lines_pass(line: str) -> None:
    assert offending_lines(line, "code", container_paths="RUN " in line) == []


def test_prose_may_name_a_machine_path_but_not_shared_material():
    assert offending_lines("stored under /tmp/ibkr-pg-*", "prose") == []
    assert offending_lines("read ../shared/design/CONTRACT.md", "prose") != []


SYS_PATH_CHANGE = re.compile(r"\bsys\.path\.(?:insert|append|extend)\b|\bsys\.path\s*(?:\+?=|\[)")


def test_no_module_changes_sys_path():
    """Tests import their helpers as modules of their package (`from .helpers import ...`, pytest's
    importlib mode); bench scripts import `table` from their own folder, which Python puts first."""
    offences = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _repository_files() if path.suffix == ".py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SYS_PATH_CHANGE.search(line)
    ]
    assert not offences, "no sys.path changes:\n" + "\n".join(offences)


def test_the_sys_path_check_finds_a_change():
    assert SYS_PATH_CHANGE.search("sys.path.insert(0, str(Path(__file__).parent))")
    assert SYS_PATH_CHANGE.search("sys.path[:0] = [here]")
    assert not SYS_PATH_CHANGE.search("print(sys.path)")
