"""``Hub.wait``: early arrivals, timeouts, cancellation and many concurrent waiters."""

from __future__ import annotations

import asyncio

import pytest

from hub import Hub, Status, TaskNotFound, Update, WaitTimeout


async def test_returns_at_once_when_the_webhook_beat_the_waiter(hub: Hub) -> None:
    task = await hub.register("generic")
    await hub.receive("generic", Update(status=Status.FAILED), task_id=task.id)
    async with asyncio.timeout(1):
        done = await hub.wait(task.id, timeout=30)
    assert done.status is Status.FAILED
    assert len(hub.waiters) == 0


async def test_timeout_is_a_wait_timeout_with_the_last_state(hub: Hub) -> None:
    task = await hub.register("generic")
    await hub.receive("generic", Update(status=Status.RUNNING, progress=30), task_id=task.id)
    with pytest.raises(WaitTimeout) as caught:
        await hub.wait(task.id, timeout=0.05)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.task.status is Status.RUNNING
    assert caught.value.task.progress == 30
    assert len(hub.waiters) == 0


async def test_unknown_task(hub: Hub) -> None:
    with pytest.raises(TaskNotFound):
        await hub.wait("tsk_nope", timeout=1)
    assert len(hub.waiters) == 0


async def test_cancelled_waiters_leave_nothing_behind(hub: Hub) -> None:
    task = await hub.register("generic")
    waiting = [asyncio.create_task(hub.wait(task.id, timeout=30)) for _ in range(100)]
    async with asyncio.timeout(5):
        while len(hub.waiters) < 100:
            await asyncio.sleep(0.01)
    for waiter in waiting:
        waiter.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert len(hub.waiters) == 0


async def test_thousands_of_concurrent_waiters_all_resolve(hub: Hub) -> None:
    tasks = [await hub.register("generic") for _ in range(200)]
    waiting = [
        asyncio.create_task(hub.wait(task.id, timeout=30)) for task in tasks for _ in range(10)
    ]
    async with asyncio.timeout(10):
        while len(hub.waiters) < len(waiting):
            await asyncio.sleep(0.01)
    await asyncio.gather(
        *(hub.receive("generic", Update(status=Status.SUCCEEDED), task_id=t.id) for t in tasks)
    )
    async with asyncio.timeout(10):
        results = await asyncio.gather(*waiting)
    assert len(results) == 2000
    assert all(r.status is Status.SUCCEEDED for r in results)
    assert len(hub.waiters) == 0
