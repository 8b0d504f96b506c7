"""Finding a local stack: `make run` writes `.var/stack.json` (CONTRACT.md) once every part is ready."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibkr_client.errors import StackNotFound

STACK_FILE = Path(".var") / "stack.json"


@dataclass(frozen=True)
class StackInfo:
    """What `.var/stack.json` says: where NATS is, the connection id, the gateway, the processes."""

    path: Path
    nats_url: str
    connection: str
    gateway_url: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def find_stack_file(start: Path | None = None) -> Path | None:
    """`.var/stack.json` in `start` (default: the working directory) or the nearest parent that has one."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STACK_FILE
        if candidate.is_file():
            return candidate
    return None


def read_stack(path: Path | None = None, *, start: Path | None = None) -> StackInfo:
    """The stack described by `path`, or by the stack file found from `start` up; StackNotFound otherwise."""
    found = path or find_stack_file(start)
    if found is None:
        where = (start or Path.cwd()).resolve()
        raise StackNotFound(f"no running stack found: no {STACK_FILE} in {where} or above it (start one with "
                            "`make run`, or give the NATS URL: --nats-url / IBKR_NATS_URL)")
    try:
        data = json.loads(Path(found).read_text())
        return StackInfo(path=Path(found), nats_url=str(data["nats_url"]),
                         connection=str(data.get("connection") or "paper"), gateway_url=data.get("gateway_url"),
                         pids=dict(data.get("pids") or {}), raw=data)
    except FileNotFoundError:
        raise StackNotFound(f"{found} is gone: the stack stopped") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise StackNotFound(f"{found} is not a stack file ({type(exc).__name__}: {exc})") from None
