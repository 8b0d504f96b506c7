"""Fixtures of the sync-worker tests: names per test, cpsim, the bridge, the app in-process."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
