"""stop_task / wait_event: a stop always ends the loop, even when a cancellation was swallowed."""

from __future__ import annotations

import asyncio

from ibkr_common.tasks import gather_list, stop_task, stop_tasks, wait_event


async def test_stop_task_ends_a_loop_that_swallowed_the_first_cancellation() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # as 3.11's wait_for does when a reply races the cancel

    task = asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_task(task, nudge_s=0.05), 5)

    assert task.cancelled() and swallowed == 1


async def test_stop_tasks_ends_all_and_tolerates_failed_and_missing_ones() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    loop = asyncio.get_running_loop()
    failed, sleeping = loop.create_task(fails()), loop.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    await stop_tasks([failed, sleeping, None])

    assert failed.done() and isinstance(failed.exception(), RuntimeError)
    assert sleeping.cancelled()


async def test_wait_event_tells_set_from_timeout() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True


async def test_wait_event_keeps_a_cancellation_that_races_with_the_event() -> None:
    event = asyncio.Event()
    task = asyncio.get_running_loop().create_task(wait_event(event, 5))
    await asyncio.sleep(0)
    event.set()
    task.cancel()  # the same loop step as the wake-up
    await asyncio.wait([task], timeout=1)

    assert task.cancelled()


async def test_gather_list_awaits_one_in_place_and_several_side_by_side() -> None:
    async def current() -> asyncio.Task[object] | None:
        return asyncio.current_task()

    outer = asyncio.current_task()
    assert await gather_list(current()) == [outer]  # no task of its own
    started: list[int] = []

    async def slow(n: int) -> int:
        started.append(n)
        await asyncio.sleep(0.05)
        return n * 10

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await gather_list(slow(1), slow(2), slow(3)) == [10, 20, 30]
    assert loop.time() - t0 < 0.14 and started == [1, 2, 3]  # concurrently, in order
