"""One `make run` stack per test module (started by `stack_helpers.start_stack`)."""

from collections.abc import Iterator

import pytest

from .stack_helpers import Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield running
    finally:
        running.stop()
