"""The SQLite writer: a bounded WAL under sustained writes, and a locked file waited for."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hub.models import Source, Status, Task, Update
from hub.store.base import CreateTask, Ingest
from hub.store.sqlite import SQLiteStore


def _task(number: int) -> Task:
    now = time.time()
    return Task(f"tsk_{number:06d}", "generic", Status.QUEUED, now, now)


async def test_the_wal_stays_bounded_under_sustained_writes(tmp_path: Path) -> None:
    # A checkpoint that never catches up with a busy writer lets the log grow without end
    # (it once grew by 50 MB/s); the automatic checkpoint must keep restarting it.
    store = SQLiteStore(tmp_path / "hub.db")
    await store.start()
    try:
        tasks = [_task(n) for n in range(200)]
        await store.write([CreateTask(task) for task in tasks])
        raw = '{"pad":"' + "x" * 2000 + '"}'
        for batch in range(150):  # ~60 MB of WAL frames, well past one checkpoint interval
            await store.write(
                [
                    Ingest(
                        "generic",
                        Update(Status.RUNNING, progress=batch % 100),
                        Source.WEBHOOK,
                        time.time(),
                        raw=raw,
                        task_id=task.id,
                    )
                    for task in tasks
                ]
            )
        wal = tmp_path / "hub.db-wal"
        assert wal.stat().st_size < 16 * 1024 * 1024, wal.stat().st_size
        assert len(await store.task_events(tasks[0].id)) == 1 + 150  # created, then each report
    finally:
        await store.close()


async def test_a_write_waits_off_the_loop_while_another_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "hub.db")
    await store.start()
    intruder = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
    try:
        intruder.execute("BEGIN IMMEDIATE")  # as a backup or a manual edit would
        write = asyncio.create_task(store.write([CreateTask(_task(1))]))
        started = time.monotonic()
        for _ in range(20):
            await asyncio.sleep(0.01)
        # Waiting on the loop would have held it for the whole 5 s busy timeout.
        assert time.monotonic() - started < 2.5
        assert not write.done()
        intruder.execute("COMMIT")
        [result] = await asyncio.wait_for(write, 5)
        assert result.task is not None
        assert (await store.get_task("tsk_000001")) is not None
    finally:
        intruder.close()
        await store.close()


async def test_a_write_cancelled_while_it_commits_leaves_the_ids_right(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.db")
    await store.start()
    try:
        committing = asyncio.Event()
        call = store._writer._call

        async def spy(function: Any, *args: Any) -> Any:
            if args == ("COMMIT",):
                committing.set()
            return await call(function, *args)

        store._writer._call = spy  # type: ignore[method-assign]
        write = asyncio.create_task(store.write([CreateTask(_task(1))]))
        await asyncio.wait_for(committing.wait(), 5)
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        # That COMMIT finished all the same: the next batch must neither reuse its event id
        # and seq nor skip past them.
        [result] = await store.write([CreateTask(_task(2))])
        assert result.error is None
        assert [e.seq for e in result.events] == [2]
        assert (await store.get_task("tsk_000001")) is not None
    finally:
        await store.close()


async def test_a_batch_of_large_bodies_is_written_off_the_event_loop(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.db")
    await store.start()
    try:
        task = _task(1)
        await store.write([CreateTask(task)])
        body = '{"pad":"' + "x" * (1024 * 1024) + '"}'
        ops = [
            Ingest(
                "generic",
                Update(Status.RUNNING, progress=step * 10),
                Source.WEBHOOK,
                time.time(),
                raw=body,
                task_id=task.id,
            )
            for step in range(6)  # 6 MiB: over the inline limit
        ]
        threads: list[str] = []
        plan_and_save = store._plan_and_save

        def spy(*args: Any) -> Any:
            threads.append(threading.current_thread().name)
            return plan_and_save(*args)

        store._plan_and_save = spy  # type: ignore[method-assign]
        results = await store.write(ops)
        assert [r.error for r in results] == [None] * 6
        assert threads and threads[0] != threading.main_thread().name
        await store.write(ops[:1])  # a small batch stays on the event loop
        assert threads[1] == threading.main_thread().name
        stored = await store.task_events(task.id)
        assert [len(e.raw["pad"]) for e in stored[1:]] == [1024 * 1024] * 7
        assert (await store.get_task(task.id)).progress == 50  # type: ignore[union-attr]
    finally:
        await store.close()
