"""The event loop the services run on: uvloop where it is installed (it is a dependency on Linux and macOS),
asyncio's own loop elsewhere (Windows).

uvloop is libuv under asyncio's public loop interface: the same code runs on it, with cheaper wake-ups
from other threads (aiosqlite's, anyio's workers), timers and socket reads: where the order path and the
audit consumer spend what they do not spend in our code (`make bench` measures both).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's `new_event_loop` when uvloop is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new loop from `loop_factory` (as `asyncio.run` does)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
