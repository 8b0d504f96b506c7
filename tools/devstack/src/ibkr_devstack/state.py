"""What a `make run` on the simulator keeps between runs: nothing but the last run, set aside.

cpsim starts with a fresh account every time, so a database and an event stream kept from an earlier
simulator would hold orders, positions and ledger entries the new one has never seen. They are moved
to `.var/previous/` (replacing the run before), where they can still be read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PREVIOUS = "previous"
RUN_STATE = ("ibkr.db", "ibkr.db-wal", "ibkr.db-shm", "nats")


def set_aside_previous_run(var: Path) -> bool:
    """Move the last run's database and stream store under `var/previous/`; True when there was one."""
    present = [var / name for name in RUN_STATE if (var / name).exists()]
    if not present:
        return False
    previous = var / PREVIOUS
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for path in present:
        path.rename(previous / path.name)
    return True
