"""docker-compose.yml read as docker compose reads it, for the process harness (`make run-prod`) and `.env.example`.

Only what the project's compose file uses: `${VAR}` interpolation with `:-`, `-`, `:?`, `?`, `:+`, `+` (nested
in defaults too) and `$$`; YAML anchors and merge keys; per service its image or build, command,
environment (map or list), env_file, depends_on conditions, healthcheck, volumes and profiles.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OPERATORS = (":-", ":?", ":+", "-", "?", "+")
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)")


class ComposeError(ValueError):
    """The compose file cannot be read or interpolated."""


class MissingVariable(ComposeError):
    """A `${VAR:?message}` whose variable is not set."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


@dataclass(frozen=True)
class Expression:
    """One `${...}`: the variable, its operator (or ""), and the unparsed text after the operator."""

    name: str
    operator: str
    argument: str


def _expression_end(text: str, start: int) -> int:
    """Index of the `}` closing the `${` at `start` (nested `${...}` inside count)."""
    depth, index = 0, start
    while index < len(text):
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ComposeError(f"unclosed ${{ in {text!r}")


def _parse(body: str) -> Expression:
    found = NAME.match(body)
    if not found:
        raise ComposeError(f"invalid interpolation ${{{body}}}")
    rest = body[found.end():]
    for operator in OPERATORS:
        if rest.startswith(operator):
            return Expression(found.group(), operator, rest[len(operator):])
    if rest:
        raise ComposeError(f"invalid interpolation ${{{body}}}")
    return Expression(found.group(), "", "")


def _pieces(text: str) -> list[str | Expression]:
    """The text split into literal strings and expressions (`$$` is a literal `$`)."""
    out: list[str | Expression] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "$" and text.startswith("$$", index):
            literal.append("$")
            index += 2
        elif char == "$" and text.startswith("${", index):
            end = _expression_end(text, index)
            out.extend(["".join(literal), _parse(text[index + 2:end])])
            literal = []
            index = end + 1
        elif char == "$" and (bare := NAME.match(text, index + 1)):
            out.extend(["".join(literal), Expression(bare.group(), "", "")])
            literal = []
            index = bare.end()
        else:
            literal.append(char)
            index += 1
    out.append("".join(literal))
    return [piece for piece in out if piece != ""]


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """`text` with every `${...}` replaced as docker compose does; MissingVariable for an unset `:?`."""
    out = []
    for piece in _pieces(text):
        if isinstance(piece, str):
            out.append(piece)
            continue
        value = variables.get(piece.name)
        present, non_empty = value is not None, bool(value)
        op, arg = piece.operator, piece.argument
        if op == "":
            out.append(value or "")
        elif op in (":-", "-"):
            use = non_empty if op == ":-" else present
            out.append(value if use and value is not None else interpolate(arg, variables))
        elif op in (":?", "?"):
            if not (non_empty if op == ":?" else present):
                raise MissingVariable(piece.name, interpolate(arg, variables) or "required")
            out.append(value or "")
        else:  # ":+" / "+"
            out.append(interpolate(arg, variables) if (non_empty if op == ":+" else present) else "")
    return "".join(out)


@dataclass
class RequiredVariable:
    """A variable the compose file cannot do without (`${NAME:?message}`), and any alias accepted for it."""

    name: str
    message: str = ""
    aliases: list[str] = field(default_factory=list)


def required_variables(text: str) -> dict[str, RequiredVariable]:
    """Every required variable of a compose file's text, in order of first use.

    `${NAME:-${ALIAS:?message}}` makes NAME required, with ALIAS accepted in its place.
    """
    found: dict[str, RequiredVariable] = {}

    def walk(fragment: str, outer: str | None) -> None:
        for piece in _pieces(fragment):
            if isinstance(piece, str):
                continue
            if piece.operator in (":?", "?"):
                name = outer or piece.name
                entry = found.setdefault(name, RequiredVariable(name))
                if outer and piece.name != outer and piece.name not in entry.aliases:
                    entry.aliases.append(piece.name)
                if not entry.message and piece.argument.strip():
                    entry.message = piece.argument.strip()
            elif piece.operator in (":-", "-"):
                walk(piece.argument, outer or piece.name)

    for line in text.splitlines():
        if not line.lstrip().startswith("#"):
            walk(line, None)
    return found


def parse_duration(value: str | int | float | None, default: float) -> float:
    """Seconds of a compose duration (`1m30s`, `500ms`, `10s`)."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        raise ComposeError(f"not a duration: {value!r}")
    return sum(float(number) * scale[unit] for number, unit in parts)


@dataclass(frozen=True)
class Healthcheck:
    """A service's health check, as compose runs it."""

    test: list[str]
    interval_s: float = 30.0
    timeout_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0
    start_interval_s: float = 5.0


@dataclass(frozen=True)
class Volume:
    """A mount: a named volume or a host path (relative to the project folder) at `target`."""

    source: str
    target: str
    named: bool
    read_only: bool


@dataclass
class Service:
    """One service of the compose file, interpolated."""

    name: str
    image: str | None
    build: dict[str, Any] | None
    command: list[str]
    environment: dict[str, str]
    env_files: list[tuple[str, bool]]
    depends_on: dict[str, str]
    healthcheck: Healthcheck | None
    volumes: list[Volume]
    profiles: list[str]
    restart: str


@dataclass
class Compose:
    """The services and named volumes of a compose file."""

    project_dir: Path
    services: dict[str, Service]
    volumes: list[str]

    def active(self, profiles: set[str]) -> dict[str, Service]:
        """The services compose starts with these profiles enabled."""
        return {n: s for n, s in self.services.items() if not s.profiles or set(s.profiles) & profiles}


def _interpolate_all(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, variables)
    if isinstance(value, list):
        return [_interpolate_all(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate_all(v, variables) for k, v in value.items()}
    return value


def _environment(raw: Any, variables: Mapping[str, str]) -> dict[str, str]:
    if raw is None:
        return {}
    items = raw.items() if isinstance(raw, dict) else (
        (entry.split("=", 1)[0], entry.split("=", 1)[1] if "=" in entry else None) for entry in raw)
    env: dict[str, str] = {}
    for key, value in items:
        if value is None:  # `KEY:` alone takes the value from compose's own environment
            if key in variables:
                env[key] = variables[key]
        else:
            env[key] = "true" if value is True else "false" if value is False else str(value)
    return env


def _env_files(raw: Any) -> list[tuple[str, bool]]:
    if raw is None:
        return []
    entries = [raw] if isinstance(raw, str) else raw
    return [(e, True) if isinstance(e, str) else (e["path"], bool(e.get("required", True))) for e in entries]


def _healthcheck(raw: Any) -> Healthcheck | None:
    if not raw or raw.get("disable"):
        return None
    test = raw["test"]
    test = ["CMD-SHELL", test] if isinstance(test, str) else list(test)
    if test[0] == "NONE":
        return None
    return Healthcheck(
        test=test, interval_s=parse_duration(raw.get("interval"), 30.0),
        timeout_s=parse_duration(raw.get("timeout"), 30.0), retries=int(raw.get("retries", 3)),
        start_period_s=parse_duration(raw.get("start_period"), 0.0),
        start_interval_s=parse_duration(raw.get("start_interval"), 5.0),
    )


def _volumes(raw: Any, named: set[str]) -> list[Volume]:
    out = []
    for entry in raw or []:
        if isinstance(entry, dict):
            source, target, read_only = entry.get("source", ""), entry["target"], bool(entry.get("read_only"))
        else:
            parts = entry.split(":")
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        out.append(Volume(source, target, source in named, read_only))
    return out


def _depends_on(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def load_compose(path: Path, variables: Mapping[str, str]) -> Compose:
    """Read and interpolate a compose file with `variables` (what compose takes from `.env` and the shell)."""
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict) or not isinstance(raw.get("services"), dict):
        raise ComposeError(f"{path}: no services")
    named = set((raw.get("volumes") or {}).keys())
    services: dict[str, Service] = {}
    for name, spec in raw["services"].items():
        spec = _interpolate_all(spec, variables)
        command = spec.get("command") or []
        services[name] = Service(
            name=name, image=spec.get("image"), build=spec.get("build"),
            command=shlex.split(command) if isinstance(command, str) else [str(c) for c in command],
            environment=_environment(spec.get("environment"), variables),
            env_files=_env_files(spec.get("env_file")), depends_on=_depends_on(spec.get("depends_on")),
            healthcheck=_healthcheck(spec.get("healthcheck")), volumes=_volumes(spec.get("volumes"), named),
            profiles=list(spec.get("profiles") or []), restart=str(spec.get("restart", "no")),
        )
    return Compose(path.parent.resolve(), services, sorted(named))


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines of an env file (comments, blank lines, `export`, quotes as compose reads them)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def start_order(services: Mapping[str, Service]) -> list[str]:
    """The services, each after everything it depends on (ComposeError on a cycle or an unknown service)."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if name not in services:
            raise ComposeError(f"{path[-1]} depends on {name}, which is not started")
        if state.get(name) == "visiting":
            raise ComposeError(f"dependency cycle: {' -> '.join((*path, name))}")
        state[name] = "visiting"
        for dependency in services[name].depends_on:
            visit(dependency, (*path, name))
        state[name] = "done"
        order.append(name)

    for name in services:
        visit(name, ())
    return order
