"""Every image docker-compose.yml builds can be built, and runs the commands compose gives it.

No Docker engine needed: each Dockerfile's build is replayed in a temporary folder standing for the image's
file system. Its COPY instructions bring in the files of the build context (as .dockerignore filters them)
and its own `uv sync` commands run there in order, offline, with the machine's uv and its cache (`make install`
filled it; `make test` runs it first). The venv they make must then import the module of every compose
command built from that Dockerfile, and of its CMD, found through the image's PATH and working directory.
A workspace package missing from the COPY lines fails the sync, as it fails `docker build`. The migrate
job's `ibkr-db upgrade` runs its migrations on SQLite. And the layers stay cached: the first sync sees only
uv.lock and the pyproject.toml of every package copied later, and the last one installs only the workspace's.

What differs from `docker build`: the machine's interpreter and uv (the image has python:3.11-slim and uv
0.9), no bytecode compiled, hardlinks from the cache (the Dockerfiles copy), and the RUN lines that are not uv
(`useradd`) are not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from ibkr_devstack.compose import Service, load_compose, required_variables

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
#: PATH of the python:3.11-slim base image (none of it exists in the replayed file system).
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
#: What the context may hold before the first sync: the lock file and the projects' pyproject.toml files.
DEPENDENCY_FILES = frozenset({"uv.lock", "pyproject.toml"})
IMPORT = (
    "import importlib, sys\n"
    "for name in sys.argv[1:]:\n"
    "    module = importlib.import_module(name)\n"
    "    if hasattr(module, '__path__'):\n"
    "        importlib.import_module(name + '.__main__')  # what `python -m package` runs\n"
    "    print(module.__file__)\n"
)


def _images() -> dict[str, list[Service]]:
    """Each Dockerfile compose builds, with the compose services built from it."""
    text = COMPOSE.read_text()
    compose = load_compose(COMPOSE, dict.fromkeys(required_variables(text), "x"))
    images: dict[str, list[Service]] = {}
    for service in compose.services.values():
        if service.build:
            assert service.build.get("context", ".") == ".", service.name  # every Dockerfile says so
            images.setdefault(service.build["dockerfile"], []).append(service)
    return images


IMAGES = _images()


# --- .dockerignore, as moby's patternmatcher reads it ---

def _pattern(pattern: str) -> re.Pattern[str]:
    out, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
            continue
        if pattern.startswith("**", index):
            out, index = out + ".*", index + 2
            continue
        if char == "[":
            end = pattern.index("]", index)
            out, index = out + pattern[index:end + 1], end + 1
            continue
        out += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
        index += 1
    return re.compile(f"^{out}$")


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        cleaned = os.path.normpath(line.removeprefix("!").strip().lstrip("/"))
        rules.append((negated, _pattern(cleaned)))
    return rules


IGNORED = _dockerignore()


def _excluded(relative: str) -> bool:
    """Whether the context leaves out this path (relative to the context, `/`-separated)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negated, pattern in IGNORED:
        if any(pattern.match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


# --- the Dockerfile ---

@dataclass
class Stage:
    """One FROM ... of a Dockerfile, as far as the replay needs it."""

    env: dict[str, str] = field(default_factory=lambda: {"PATH": BASE_PATH})
    workdir: str = "/"
    cmd: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments left out."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        out.append((keyword.upper(), arguments.strip()))
        pending = ""
    return out


def _words(arguments: str) -> list[str]:
    """The exec (JSON) form or the shell words of an instruction's arguments."""
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def _set_env(stage: Stage, arguments: str) -> None:
    words = shlex.split(arguments)
    pairs = [w.split("=", 1) for w in words] if "=" in words[0] else [[words[0], " ".join(words[1:])]]
    for name, value in pairs:
        stage.env[name] = _expand(value, stage.env)


class Replay:
    """A Dockerfile's build run into `rootfs` (the image's `/`), with `uv` from this machine."""

    def __init__(self, dockerfile: str, rootfs: Path, uv: str) -> None:
        self.dockerfile, self.rootfs, self.uv = dockerfile, rootfs, uv
        self.stages: list[Stage] = []
        self.copied: list[str] = []  # the context's files, in order
        self.sources: list[str] = []  # the COPY instructions' sources, in order
        self.syncs: list[list[str]] = []
        self.outputs: list[str] = []
        self.before_first_sync: list[str] = []

    def path(self, image_path: str, stage: Stage) -> Path:
        absolute = PurePosixPath(stage.workdir) / image_path
        return self.rootfs / str(absolute).lstrip("/")

    def run(self) -> Stage:
        """Replay every instruction; the final stage (where the commands run) is returned."""
        for keyword, arguments in _instructions((ROOT / self.dockerfile).read_text()):
            if keyword == "FROM":
                self.stages.append(Stage())
                continue
            stage = self.stages[-1]
            if keyword == "ENV":
                _set_env(stage, arguments)
            elif keyword == "WORKDIR":
                stage.workdir = str(PurePosixPath(stage.workdir) / _expand(arguments, stage.env))
                self.path(".", stage).mkdir(parents=True, exist_ok=True)
            elif keyword == "CMD":
                stage.cmd = _words(arguments)
            elif keyword == "COPY" and "--from=" not in arguments:
                self.copy(stage, [w for w in _words(arguments) if not w.startswith("--")])
            elif keyword == "RUN":
                self.run_uv(stage, arguments)
        return self.stages[-1]

    def copy(self, stage: Stage, words: list[str]) -> None:
        *sources, destination = words
        into_folder = destination.endswith("/") or len(sources) > 1
        for source in sources:
            relative = os.path.normpath(source).lstrip("/")
            assert not set(relative) & set("*?["), f"{self.dockerfile}: wildcards not replayed: {source}"
            origin = ROOT / relative
            assert origin.exists() and not _excluded(relative), f"{self.dockerfile}: COPY {source}: not in context"
            self.sources.append(relative)
            target = self.path(destination, stage)
            if origin.is_dir():
                self.copy_folder(origin, relative, target)
                continue
            target = target / origin.name if into_folder else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
            self.copied.append(relative)

    def copy_folder(self, origin: Path, relative: str, target: Path) -> None:
        for folder, subfolders, files in os.walk(origin):
            inner = Path(folder).relative_to(origin)
            subfolders[:] = [d for d in subfolders if not _excluded(os.path.normpath(f"{relative}/{inner / d}"))]
            for name in files:
                path = os.path.normpath(f"{relative}/{inner / name}")
                if not _excluded(path):
                    (target / inner).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(Path(folder) / name, target / inner / name)
                    self.copied.append(path)

    def run_uv(self, stage: Stage, arguments: str) -> None:
        words = shlex.split(arguments)
        while words and words[0].startswith("--"):  # --mount=type=cache,...: the cache is the machine's
            words.pop(0)
        for command in " ".join(words).split(" && "):
            argv = shlex.split(command)
            if argv[0] != "uv":
                continue  # useradd and such: nothing the build's files depend on
            if not self.syncs:
                self.before_first_sync = list(self.copied)
            self.syncs.append(argv)
            env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") or k == "UV_CACHE_DIR"}
            env.pop("VIRTUAL_ENV", None)
            env.update({k: v for k, v in stage.env.items() if k.startswith("UV_")})
            env.update(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="hardlink", UV_COMPILE_BYTECODE="0")
            result = subprocess.run(
                [self.uv, *argv[1:], "--offline", "--python", sys.executable],
                cwd=self.path(".", stage), env=env, capture_output=True, text=True, timeout=120,
            )
            self.outputs.append(result.stderr)
            assert result.returncode == 0, (
                f"{self.dockerfile}: `{command}` fails after COPY {self.sources} (offline: the packages come "
                f"from uv's cache, which `make install` fills):\n{result.stderr}")

    def executable(self, name: str, stage: Stage) -> str:
        """`name` looked up on the image's PATH (only what the build put in the image exists)."""
        for folder in stage.env["PATH"].split(":"):
            candidate = self.rootfs / folder.lstrip("/") / name
            if folder.startswith("/") and candidate.exists():
                return str(candidate)
        raise AssertionError(f"{self.dockerfile}: {name} is not on the image's PATH {stage.env['PATH']}")


def _uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.base_prefix) / "bin"))  # pip's uv
    if not found:
        pytest.skip("uv not found (make install installs it); under CI=true this skip fails")
    return found


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_the_image_builds_and_runs_the_commands_compose_gives_it(dockerfile, tmp_path):
    replay = Replay(dockerfile, tmp_path / "rootfs", _uv())
    final = replay.run()
    assert replay.syncs, f"{dockerfile}: no uv sync"

    # Layer caching: the third-party packages come from a sync that sees the dependency files only, so a code
    # change rebuilds the last layers alone; the last sync adds the workspace's own packages, nothing else.
    first, last = replay.syncs[0], replay.syncs[-1]
    early = replay.before_first_sync
    assert all(Path(p).name in DEPENDENCY_FILES for p in early), f"{dockerfile}: more than dependency files: {early}"
    projects = [s for s in replay.sources if (ROOT / s / "pyproject.toml").is_file()]
    late = [s for s in projects if f"{s}/pyproject.toml" not in early]
    assert projects and not late, f"{dockerfile}: pyproject.toml not copied before the first sync: {late}"
    assert "--no-install-workspace" in first and "--no-install-workspace" not in last, dockerfile
    assert "--frozen" in first and "--frozen" in last, dockerfile
    installed_last = [line for line in replay.outputs[-1].splitlines() if line.startswith(" + ")]
    assert installed_last and all("(from file://" in line for line in installed_last), replay.outputs[-1]

    commands = [service.command for service in IMAGES[dockerfile] if service.command] + [final.cmd]
    cwd = replay.path(".", final)
    env = {"PATH": ":".join(str(replay.rootfs / d.lstrip("/")) for d in final.env["PATH"].split(":")),
           "HOME": str(tmp_path), "LANG": "C.UTF-8", **{k: v for k, v in final.env.items() if k != "PATH"}}
    # The modules of every `python -m` in one interpreter (a fresh venv has no bytecode: one compile), then
    # the other commands, with the bytecode written.
    modules = {c[c.index("-m") + 1]: c for c in commands if c[0].startswith("python") and "-m" in c}
    assert modules, f"{dockerfile}: no `python -m` command"  # every image here runs one
    python = replay.executable(next(iter(modules.values()))[0], final)
    runs = [(list(modules.values()), [python, "-c", IMPORT, *modules])]
    for command in commands:
        if command in modules.values():
            continue
        program = replay.executable(command[0], final)
        if command[:2] == ["ibkr-db", "upgrade"]:  # the migrate job: its migrations, on SQLite
            runs.append(([command], [program, "upgrade", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/db"]))
        else:
            runs.append(([command], [program, "--help"]))
    for number, (run, argv) in enumerate(runs):
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{dockerfile}: {run}:\n{result.stdout}{result.stderr}"
        if number == 0:  # the modules are the image's, not the repository's
            assert all(Path(f).is_relative_to(replay.rootfs) for f in result.stdout.split()), result.stdout
