"""Background-task helpers that never lose a cancellation.

Python 3.11's `asyncio.wait_for` (used inside nats-py's `request` too) returns the inner result
when it completes in the same loop step as a `cancel()`, and the cancellation is gone: a loop that
was told to stop goes on, and whoever awaits it waits forever. `stop_task` cancels until the task
is really done; `wait_event` waits with `asyncio.timeout`, which keeps a racing cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("ibkr_common.tasks")


async def gather_list(*aws: Awaitable[T]) -> list[T]:
    """`asyncio.gather` as a list, except that one awaitable (a one-leg order's lookup, say) is awaited
    in place: no task and no extra turn of the loop for the common case."""
    if len(aws) == 1:
        return [await aws[0]]
    return list(await asyncio.gather(*aws))


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until `event` is set or `timeout` seconds pass (None: forever); True when it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def stop_task(task: asyncio.Task[Any] | None, *, nudge_s: float = 0.5) -> None:
    """Cancel `task` and wait until it has ended, cancelling again while a cancellation was swallowed."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=nudge_s)
    with contextlib.suppress(asyncio.CancelledError):
        exc = task.exception()
        if exc is not None:
            log.warning("task %s had failed: %s", task.get_name(), type(exc).__name__)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any] | None], *, nudge_s: float = 0.5) -> None:
    """`stop_task` for each of `tasks`, all cancelled at once."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    for task in pending:
        await stop_task(task, nudge_s=nudge_s)
