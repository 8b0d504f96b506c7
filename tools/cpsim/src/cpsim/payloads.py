"""Recorded Client Portal responses (WireMock envelopes) used as templates for cpsim's bodies.

The files under `payloads/recordings/` are real 2026 paper-account responses, sanitized, taken from the
ibkr-conduit project under the MIT licence (see recordings/README.md and LICENSE-ibkr-conduit). Parsing
tests elsewhere read them through `envelope()` / `recorded()` so that cpsim and the parsers share one copy.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent / "payloads"
RECORDINGS = ROOT / "recordings"


def recording_path(name: str) -> Path:
    """Path of a recording, e.g. `Orders/GET-live-orders.json`."""
    return RECORDINGS / name


@cache
def _envelope(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(recording_path(name).read_text())
    return data


def envelope(name: str) -> dict[str, Any]:
    """The whole WireMock envelope `{"Request": ..., "Response": {"StatusCode", "Headers", "Body"}}`."""
    return copy.deepcopy(_envelope(name))


def recorded(name: str) -> Any:
    """A fresh copy of the recorded response body."""
    return copy.deepcopy(_envelope(name)["Response"]["Body"])


def names() -> list[str]:
    """Every recording, as `Group/FILE.json`."""
    return sorted(str(p.relative_to(RECORDINGS)) for p in RECORDINGS.rglob("*.json"))
