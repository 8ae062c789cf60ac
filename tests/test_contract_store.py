"""The store contract: the same tests for every store (SQLite, and PostgreSQL for real)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.errors import StoreUnavailable, TaskNotFound
from hub.models import Disposition, Source, Status, Task, Update
from hub.store import Store, store_from_url
from hub.store.base import Bind, CreateTask, Ingest, PollRelease, TaskFilter, WriteOp
from hub.store.plan import AlreadyBound

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = store_from_url(store_url)
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def other(store_url: str, store: Store) -> AsyncIterator[Store]:
    """A second store on the same database, as a second replica would have."""
    opened = store_from_url(store_url)
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


_counter = iter(range(1, 1_000_000))


def make_task(provider: str = "generic", **fields: object) -> Task:
    now = time.time()
    values: dict[str, object] = {
        "id": f"tsk_{next(_counter):08d}",
        "provider": provider,
        "status": Status.QUEUED,
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    return Task(**values)  # type: ignore[arg-type]


def ingest(
    task_id: str | None,
    status: Status | None,
    *,
    progress: int | None = None,
    external: str | None = None,
    delivery: str | None = None,
    at: float | None = None,
) -> Ingest:
    return Ingest(
        provider="generic",
        update=Update(
            status=status, progress=progress, provider_task_id=external, delivery_id=delivery
        ),
        source=Source.WEBHOOK,
        received_at=at or time.time(),
        raw={"status": str(status)},
        task_id=task_id,
    )


async def create(store: Store, *tasks: Task, polls: float | None = None) -> None:
    results = await store.write([CreateTask(t, next_poll_at=polls) for t in tasks])
    assert all(r.error is None for r in results)


async def test_create_get_and_list_with_cursor(store: Store) -> None:
    tasks = [make_task(), make_task(provider="linkrapi"), make_task(parent_id="p1")]
    tasks += [make_task(external_id="ext-9", metadata={"user": 42})]
    await create(store, *tasks)
    got = await store.get_task(tasks[3].id)
    assert got is not None and got.external_id == "ext-9" and got.metadata == {"user": 42}
    assert await store.get_task("tsk_missing") is None

    newest_first = [t.id for t in reversed(tasks)]
    page1 = await store.list_tasks(TaskFilter(limit=2))
    page2 = await store.list_tasks(TaskFilter(limit=2, before=page1[-1].id))
    assert [t.id for t in page1 + page2] == newest_first
    assert [t.id for t in await store.list_tasks(TaskFilter(provider="linkrapi"))] == [tasks[1].id]
    assert [t.id for t in await store.list_tasks(TaskFilter(parent_id="p1"))] == [tasks[2].id]
    by_external = await store.list_tasks(TaskFilter(external_id="ext-9"))
    assert [t.id for t in by_external] == [tasks[3].id]
    assert len(await store.list_tasks(TaskFilter(status=Status.QUEUED))) == 4


async def test_batch_applies_in_order_with_duplicates_and_per_op_errors(store: Store) -> None:
    task = make_task()
    results = await store.write(
        [
            CreateTask(task),
            ingest(task.id, Status.RUNNING, progress=10, delivery="d1"),
            ingest(task.id, Status.RUNNING, progress=10, delivery="d1"),
            Bind("tsk_nope", "x"),
            ingest(task.id, Status.RUNNING, progress=40),
        ]
    )
    dispositions = [r.events[0].disposition if r.events else None for r in results]
    assert dispositions == [
        Disposition.APPLIED,
        Disposition.APPLIED,
        Disposition.DUPLICATE,
        None,
        Disposition.APPLIED,
    ]
    assert isinstance(results[3].error, TaskNotFound)
    assert results[2].events[0].seq is None
    # A redelivery in a later batch is a duplicate too.
    again = await store.write([ingest(task.id, Status.RUNNING, progress=10, delivery="d1")])
    assert again[0].events[0].disposition is Disposition.DUPLICATE
    stored = await store.get_task(task.id)
    assert stored is not None and stored.progress == 40
    events = await store.task_events(task.id)
    assert [e.disposition for e in events].count(Disposition.DUPLICATE) == 2
    assert events[1].raw == {"status": "running"}


async def test_terminal_is_final_and_progress_never_goes_back(store: Store) -> None:
    task = make_task()
    await create(store, task)
    results = await store.write(
        [
            ingest(task.id, Status.RUNNING, progress=60),
            ingest(task.id, Status.RUNNING, progress=30),
            ingest(task.id, Status.QUEUED),
        ]
    )
    assert [r.events[0].disposition for r in results] == [
        Disposition.APPLIED,
        Disposition.STALE,
        Disposition.STALE,
    ]
    await store.write([ingest(task.id, Status.SUCCEEDED)])
    late = await store.write([ingest(task.id, Status.FAILED), ingest(task.id, Status.RUNNING)])
    assert {r.events[0].disposition for r in late} == {Disposition.STALE}
    final = await store.get_task(task.id)
    assert final is not None and final.status is Status.SUCCEEDED and final.progress == 100


async def test_orphans_attach_in_order_on_bind(store: Store) -> None:
    early = await store.write(
        [
            ingest(None, Status.RUNNING, progress=20, external="job-1"),
            ingest(None, Status.RUNNING, progress=20, external="job-1"),
            ingest(None, Status.RUNNING, progress=70, external="job-1"),
        ]
    )
    assert [r.events[0].disposition for r in early] == [
        Disposition.ORPHAN,
        Disposition.DUPLICATE,
        Disposition.ORPHAN,
    ]
    assert all(r.events[0].seq is None for r in early)
    task = make_task()
    await create(store, task)
    before = await store.last_seq()
    bound = await store.write([Bind(task.id, "job-1")])
    attached = bound[0].events
    assert [e.progress for e in attached] == [20, 70]
    assert [e.seq for e in attached] == [before + 1, before + 2]
    assert all(e.task_id == task.id for e in attached)
    stored = await store.get_task(task.id)
    assert stored is not None and stored.external_id == "job-1" and stored.progress == 70
    # The id is now taken: another task cannot bind it.
    second = make_task()
    await create(store, second)
    refused = await store.write([Bind(second.id, "job-1")])
    assert isinstance(refused[0].error, AlreadyBound)


async def test_read_log_is_ordered_and_contiguous(store: Store) -> None:
    assert await store.last_seq() == 0
    assert await store.first_seq() == 1
    tasks = [make_task() for _ in range(5)]
    await create(store, *tasks)
    ops: list[WriteOp] = []
    for step in (10, 50, 90):
        ops += [ingest(t.id, Status.RUNNING, progress=step) for t in tasks]
    ops += [ingest(t.id, Status.RUNNING, progress=5) for t in tasks]  # stale: no seq
    await store.write(ops)
    log = await store.read_log(0)
    assert [e.seq for e in log] == list(range(1, 21))
    assert await store.last_seq() == 20
    assert [e.seq for e in await store.read_log(15, limit=3)] == [16, 17, 18]
    assert await store.read_log(20) == []
    assert all(e.disposition is Disposition.APPLIED for e in log)


async def test_concurrent_writers_keep_seq_contiguous(postgres_url: str) -> None:
    """Two replicas writing at once (PostgreSQL only: a SQLite file has one writing process)."""
    store, other = store_from_url(postgres_url), store_from_url(postgres_url)
    await store.start()
    await other.start()
    try:
        tasks = [make_task() for _ in range(20)]
        await create(store, *tasks)

        async def writer(target: Store, half: list[Task]) -> None:
            for step in range(1, 6):
                await target.write([ingest(t.id, Status.RUNNING, progress=step * 10) for t in half])

        await asyncio.wait_for(
            asyncio.gather(writer(store, tasks[:10]), writer(other, tasks[10:])), 30
        )
        log = await store.read_log(0)
        assert [e.seq for e in log] == list(range(1, 21 + 100))
        assert len({e.id for e in log}) == len(log)
    finally:
        await store.close()
        await other.close()


async def test_prune_drops_only_old_events_of_finished_tasks(store: Store) -> None:
    done, running = make_task(), make_task()
    await create(store, done, running)
    old = time.time() - 3600
    await store.write(
        [ingest(done.id, Status.SUCCEEDED, at=old), ingest(running.id, Status.RUNNING, at=old)]
    )
    last = await store.last_seq()
    assert await store.prune_log(time.time() - 60) == 1
    remaining = [e.task_id for e in await store.read_log(0)]
    assert done.id in remaining  # its recent "created" event stays
    assert [e.status for e in await store.task_events(done.id)] == [Status.QUEUED]
    assert await store.last_seq() == last
    first = await store.first_seq()
    assert first == 1
    assert await store.prune_log(time.time() + 60) == 1  # the rest of the finished task
    assert await store.first_seq() > first
    assert await store.last_seq() == last


async def test_poll_leases_never_overlap(store: Store, other: Store) -> None:
    now = time.time()
    due = [make_task() for _ in range(6)]
    await create(store, *due, polls=now - 1)
    later, finished = make_task(), make_task()
    await create(store, later, polls=now + 3600)
    await create(store, finished, polls=now - 1)
    await store.write([ingest(finished.id, Status.FAILED)])

    first, second = await asyncio.gather(
        store.claim_polls("a", now, lease_s=30, limit=4),
        other.claim_polls("b", now, lease_s=30, limit=4),
    )
    a_ids, b_ids = {c.task.id for c in first}, {c.task.id for c in second}
    assert not a_ids & b_ids
    assert a_ids | b_ids == {t.id for t in due}
    assert await store.claim_polls("c", now, lease_s=30, limit=10) == []

    claimed = sorted(a_ids)[0]
    await store.release_polls("b", [PollRelease(claimed, now, 1)])  # not b's: no effect
    assert await other.claim_polls("c", now, lease_s=30, limit=10) == []
    await store.release_polls("a", [PollRelease(claimed, now, 1)])
    again = await other.claim_polls("c", now + 1, lease_s=30, limit=10)
    assert [(c.task.id, c.attempts) for c in again] == [(claimed, 1)]
    # Leases run out: everything still due is claimable again after lease_s.
    expired = await store.claim_polls("d", now + 31, lease_s=30, limit=10)
    assert {c.task.id for c in expired} == {t.id for t in due} - {claimed}
    await store.release_polls("c", [PollRelease(claimed, None, 2)])
    assert await store.claim_polls("e", now + 3600 * 2, lease_s=30, limit=10) != []


async def test_many_leases_end_in_one_call_and_only_the_owners(store: Store) -> None:
    now = time.time()
    due = [make_task() for _ in range(7)]
    await create(store, *due, polls=now - 1)
    mine = await store.claim_polls("a", now, lease_s=30, limit=6)
    theirs = await store.claim_polls("b", now, lease_s=30, limit=6)
    assert len(mine) == 6 and len(theirs) == 1
    stopped, *rescheduled = [c.task.id for c in mine]
    releases = [PollRelease(stopped, None, 3)]
    releases += [PollRelease(task_id, now + 10, n) for n, task_id in enumerate(rescheduled)]
    releases.append(PollRelease(theirs[0].task.id, now, 9))  # b's lease: a cannot end it
    await store.release_polls("a", releases)
    await store.release_polls("a", [])

    again = await store.claim_polls("c", now + 10, lease_s=30, limit=10)
    assert {(c.task.id, c.attempts) for c in again} == {
        (task_id, n) for n, task_id in enumerate(rescheduled)
    }
    # b's task is still b's until its lease runs out; the stopped one is never due again.
    expired = await store.claim_polls("d", now + 31, lease_s=30, limit=10, due_by=math.inf)
    assert [(c.task.id, c.attempts) for c in expired] == [(theirs[0].task.id, 0)]


async def test_reconciliation_horizon_never_steals_a_live_lease(store: Store) -> None:
    now = time.time()
    soon, later = make_task(), make_task()
    await create(store, soon, polls=now - 1)
    await create(store, later, polls=now + 3600)
    held = await store.claim_polls("a", now, lease_s=30, limit=10)
    assert [c.task.id for c in held] == [soon.id]
    # Everything in flight is due by infinity, but a lease held at ``now`` still counts.
    swept = await store.claim_polls("b", now, lease_s=30, limit=10, due_by=math.inf)
    assert [c.task.id for c in swept] == [later.id]
    assert await store.claim_polls("c", now, lease_s=30, limit=10, due_by=math.inf) == []


async def test_a_store_that_is_not_running_raises_store_unavailable(store_url: str) -> None:
    closed = store_from_url(store_url)
    with pytest.raises(StoreUnavailable):
        await closed.get_task("tsk_x")
    with pytest.raises(StoreUnavailable):
        await closed.write([CreateTask(make_task())])
    await closed.start()
    await closed.close()
    with pytest.raises(StoreUnavailable):
        await closed.ping()
