"""What the SQLite store writes for each kind of report, read back from the file itself."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.models import Output, Source, Status, Task, Update
from hub.store.base import CreateTask, Ingest
from hub.store.sqlite import SQLiteStore

FULL_UPDATE = "UPDATE tasks SET external_id"
PROGRESS_UPDATE = "UPDATE tasks SET progress"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "hub.db")
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def _task(name: str) -> Task:
    now = time.time()
    return Task(name, "generic", Status.QUEUED, now, now)


def _report(task_id: str, update: Update) -> Ingest:
    return Ingest("generic", update, Source.WEBHOOK, time.time(), raw="{}", task_id=task_id)


def _statements(store: SQLiteStore) -> list[str]:
    """Every statement the writing connection runs from now on."""
    seen: list[str] = []
    store._writer._db().set_trace_callback(seen.append)
    return seen


async def _stored(store: SQLiteStore, task_id: str) -> Task:
    """The task as the file holds it: reads go through their own connection, not the cache."""
    task = await store.get_task(task_id)
    assert task is not None
    return task


async def test_a_progress_report_rewrites_only_progress_and_timestamps(store: SQLiteStore) -> None:
    await store.write([CreateTask(_task("tsk_a"))])
    await store.write([_report("tsk_a", Update(Status.RUNNING))])  # queued -> running
    statements = _statements(store)

    await store.write([_report("tsk_a", Update(Status.RUNNING, progress=40))])

    assert any(s.startswith(PROGRESS_UPDATE) for s in statements)
    assert not any(s.startswith(FULL_UPDATE) for s in statements)
    task = await _stored(store, "tsk_a")
    assert (task.status, task.progress) == (Status.RUNNING, 40)
    assert task.last_event_at is not None and task.last_event_at >= task.created_at


async def test_a_report_that_changes_more_than_progress_writes_the_whole_state(
    store: SQLiteStore,
) -> None:
    await store.write([CreateTask(_task("tsk_b")), CreateTask(_task("tsk_c"))])
    await store.write([_report("tsk_b", Update(Status.RUNNING, progress=10))])
    await store.write([_report("tsk_c", Update(Status.RUNNING, progress=10))])
    statements = _statements(store)

    # One batch: a progress report for one task, and for the other a finish with outputs
    # and the provider's id learnt from the body.
    grid = Output("https://cdn.example/grid.png", "grid", None)
    await store.write(
        [
            _report("tsk_b", Update(Status.RUNNING, progress=70)),
            _report(
                "tsk_c",
                Update(Status.SUCCEEDED, provider_task_id="prov-c", outputs=(grid,)),
            ),
        ]
    )

    assert any(s.startswith(PROGRESS_UPDATE) and "'tsk_b'" in s for s in statements)
    assert any(s.startswith(FULL_UPDATE) and "'tsk_c'" in s for s in statements)
    b = await _stored(store, "tsk_b")
    c = await _stored(store, "tsk_c")
    assert (b.status, b.progress, b.outputs) == (Status.RUNNING, 70, [])
    assert (c.status, c.progress, c.external_id) == (Status.SUCCEEDED, 100, "prov-c")
    assert c.outputs == [grid]


async def test_nulls_and_enum_values_are_stored_as_plain_sql_values(store: SQLiteStore) -> None:
    await store.write([CreateTask(_task("tsk_d"))])
    await store.write([_report("tsk_d", Update(Status.RUNNING, progress=5))])

    rows = store._writer._db().execute(
        "SELECT typeof(status), typeof(type), typeof(disposition), typeof(source), "
        "typeof(error), typeof(outputs), typeof(provider_task_id) FROM events "
        "WHERE task_id = 'tsk_d' AND source = 'webhook'"
    )
    expected = ("text", "text", "text", "text", "null", "null", "null")
    assert [tuple(row) for row in rows] == [expected]
