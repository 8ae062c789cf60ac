"""The correlation rules, through the Hub on a real SQLite file."""

from __future__ import annotations

import asyncio

import pytest

from hub import (
    Disposition,
    Hub,
    Output,
    Settings,
    Source,
    Status,
    StoreUnavailable,
    TaskNotFound,
    Update,
)
from hub.store.plan import AlreadyBound


def running(progress: int) -> Update:
    return Update(status=Status.RUNNING, progress=progress)


async def test_terminal_is_final_and_later_events_are_stored_stale(hub: Hub) -> None:
    task = await hub.register("generic")
    done = Update(status=Status.SUCCEEDED, outputs=(Output("https://x/1.png"),))
    await hub.receive("generic", done, task_id=task.id)
    late = await hub.receive("generic", running(50), task_id=task.id)
    failed = await hub.receive("generic", Update(status=Status.FAILED), task_id=task.id)
    assert late.events[0].disposition is Disposition.STALE
    assert failed.events[0].disposition is Disposition.STALE
    current = await hub.get(task.id)
    assert current.status is Status.SUCCEEDED
    assert [o.url for o in current.outputs] == ["https://x/1.png"]
    assert len(await hub.events(task.id)) == 4  # created, succeeded, two stale


async def test_progress_never_goes_backwards(hub: Hub) -> None:
    task = await hub.register("generic")
    dispositions = []
    for progress in (10, 60, 30, 60, 80):
        result = await hub.receive("generic", running(progress), task_id=task.id)
        dispositions.append(result.events[0].disposition)
    assert dispositions == [
        Disposition.APPLIED,
        Disposition.APPLIED,
        Disposition.STALE,
        Disposition.DUPLICATE,
        Disposition.APPLIED,
    ]
    assert (await hub.get(task.id)).progress == 80


async def test_repeated_delivery_is_a_duplicate_and_not_emitted(hub: Hub) -> None:
    task = await hub.register("generic")
    seen: list[int | None] = []
    hub.dispatcher.add_listener(lambda e: seen.append(e.seq) if e.task_id == task.id else None)
    update = Update(status=Status.SUCCEEDED, delivery_id="evt-1")
    first = await hub.receive("generic", update, task_id=task.id)
    again = await hub.receive("generic", update, task_id=task.id)
    assert first.events[0].disposition is Disposition.APPLIED
    assert again.events[0].disposition is Disposition.DUPLICATE
    assert again.events[0].seq is None
    assert seen == [first.events[0].seq]


async def test_poll_result_equal_to_webhook_is_a_duplicate(hub: Hub) -> None:
    task = await hub.register("generic")
    update = Update(status=Status.SUCCEEDED, outputs=(Output("u"),), provider_status="completed")
    await hub.receive("generic", update, task_id=task.id, source=Source.WEBHOOK)
    polled = Update(status=Status.SUCCEEDED, outputs=(Output("u"),), provider_status="1")
    result = await hub.receive("generic", polled, task_id=task.id, source=Source.POLL)
    assert result.events[0].disposition is Disposition.DUPLICATE


async def test_unrecognised_status_is_kept_without_changing_the_task(hub: Hub) -> None:
    task = await hub.register("linkrapi")
    result = await hub.receive(
        "linkrapi", Update(status=None, provider_status="warp"), task_id=task.id
    )
    assert result.events[0].disposition is Disposition.UNRECOGNISED
    assert (await hub.get(task.id)).status is Status.QUEUED


async def test_events_for_an_unbound_provider_id_attach_on_bind(hub: Hub) -> None:
    task = await hub.register("imagineapi")
    early = [
        Update(status=Status.QUEUED, provider_task_id="img-1"),
        Update(status=Status.RUNNING, provider_task_id="img-1", progress=40),
        Update(status=Status.SUCCEEDED, provider_task_id="img-1", outputs=(Output("g"),)),
    ]
    for update in early:
        result = await hub.receive("imagineapi", update)
        assert result.events[0].disposition is Disposition.ORPHAN
        assert result.events[0].task_id is None
    bound = await hub.bind(task.id, "img-1")
    assert bound.status is Status.SUCCEEDED and bound.external_id == "img-1"
    events = await hub.events(task.id)
    assert [e.disposition for e in events] == [
        Disposition.APPLIED,  # created
        Disposition.STALE,  # queued again: nothing new
        Disposition.APPLIED,
        Disposition.APPLIED,
    ]
    done = await hub.wait(task.id, timeout=1)
    assert [o.url for o in done.outputs] == ["g"]


async def test_account_hook_correlates_by_ref_then_learns_the_provider_id(hub: Hub) -> None:
    task = await hub.register("imagineapi")
    await hub.receive(
        "imagineapi", Update(status=Status.QUEUED, provider_task_id="img-9", client_ref=task.id)
    )
    assert (await hub.get(task.id)).external_id == "img-9"
    later = await hub.receive(
        "imagineapi", Update(status=Status.RUNNING, provider_task_id="img-9", progress=30)
    )
    assert later.events[0].task_id == task.id
    assert later.events[0].disposition is Disposition.APPLIED


async def test_bind_conflicts_are_refused(hub: Hub) -> None:
    a = await hub.register("linkrapi")
    b = await hub.register("linkrapi")
    await hub.bind(a.id, "lk-1")
    assert (await hub.bind(a.id, "lk-1")).external_id == "lk-1"  # idempotent
    with pytest.raises(AlreadyBound):
        await hub.bind(b.id, "lk-1")
    with pytest.raises(AlreadyBound):
        await hub.bind(a.id, "lk-2")
    with pytest.raises(TaskNotFound):
        await hub.bind("tsk_missing", "lk-3")


async def test_concurrent_webhooks_share_commits_and_all_land(hub: Hub) -> None:
    tasks = [await hub.register("generic") for _ in range(50)]
    results = await asyncio.gather(
        *(hub.receive("generic", running(p), task_id=t.id) for t in tasks for p in (20, 40, 60))
    )
    assert len(results) == 150
    for task in tasks:
        assert (await hub.get(task.id)).progress == 60
    log = await hub.store.read_log(0, limit=10_000)
    seqs = [e.seq for e in log]
    assert seqs == list(range(1, len(seqs) + 1))  # contiguous, in commit order


async def test_state_survives_a_restart(settings: Settings) -> None:
    async with Hub(settings) as first:
        task = await first.register("generic")
        await first.receive("generic", Update(status=Status.SUCCEEDED), task_id=task.id)
    async with Hub(settings) as second:
        assert (await second.wait(task.id, timeout=1)).status is Status.SUCCEEDED
        next_task = await second.register("generic")
        log = await second.store.read_log(0)
        assert [e.seq for e in log] == [1, 2, 3]
        assert log[-1].task_id == next_task.id


async def test_one_bad_operation_does_not_fail_the_batch_it_shares(hub: Hub) -> None:
    good = [await hub.register("generic") for _ in range(5)]
    bad = await hub.register("generic")
    # A lone surrogate cannot be encoded for SQLite; HTTP refuses it earlier, a library
    # caller or a poller could still hand it over.
    results = await asyncio.gather(
        *(hub.receive("generic", Update(status=Status.SUCCEEDED), task_id=t.id) for t in good),
        hub.receive("generic", Update(status=Status.SUCCEEDED), task_id=bad.id, raw="\ud800"),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results[:5]] == ["WriteResult"] * 5
    assert isinstance(results[5], StoreUnavailable)
    for task in good:
        assert (await hub.get(task.id)).status is Status.SUCCEEDED
    assert (await hub.get(bad.id)).status is Status.QUEUED
