"""One production topology for the whole session: docker-compose.yml run as processes by `make run-prod`'s
harness (NATS with deploy/nats.conf, PostgreSQL with scram passwords, the jobs, every service, cpsim)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibkr_devstack.prod import ProdStack, StackFailed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prod() -> Iterator[ProdStack]:
    """docker-compose.yml's services, up and healthy (PostgreSQL must reach the folder: not under pytest's)."""
    workdir = Path(tempfile.mkdtemp(prefix="ibkr-prod-"))
    stack = ProdStack(ROOT, workdir, echo=False)
    try:
        stack.up(timeout_s=180)
    except StackFailed as exc:
        stack.down()
        pytest.fail(f"the production topology did not come up: {exc}", pytrace=False)
    try:
        yield stack
    finally:
        stack.down()
        shutil.rmtree(workdir, ignore_errors=True)
