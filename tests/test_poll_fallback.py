"""Lost, duplicated, reordered and late webhooks: polling and the state machine absorb them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hub import Disposition, ErrorCategory, Source, Status, poller
from tests.sim_env import PROVIDERS, eventually, fast_config, running

FAST_POLL = {"poll_after_s": 0.15, "poll_max_interval_s": 0.3}


def _progress(body: dict) -> int:
    item = body.get("payload", body)
    done = item.get("status") == "completed"
    return 101 if done else int(item.get("progress") or 0)


def _terminal(events: list, status: Status = Status.SUCCEEDED) -> list:
    return [e for e in events if e.status is status and e.disposition is Disposition.APPLIED]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_dropped_webhooks_complete_by_polling(tmp_path: Path, provider: str) -> None:
    async with running(tmp_path, fast_config(drop_rate=1.0), **FAST_POLL) as env:
        task = await env.hub.submit(provider, prompt="a quiet harbour")
        done = await env.wait(task.id)
        assert done.status is Status.SUCCEEDED and done.outputs
        terminal = _terminal(await env.hub.events(task.id))
        assert [e.source for e in terminal] == [Source.POLL]
        assert all(d.outcome == "dropped" for d in env.sim.deliverer.log)


@pytest.mark.parametrize("provider", ["linkrapi", "imagineapi"])
async def test_duplicated_and_reordered_webhooks_give_one_terminal_event(
    tmp_path: Path, provider: str
) -> None:
    knobs = fast_config(duplicate_rate=1.0, reorder_rate=1.0, progress_webhooks=True, steps=6)
    async with running(tmp_path, knobs) as env:
        task = await env.hub.submit(provider, prompt="three birds on a wire")
        done = await env.wait(task.id)
        assert done.status is Status.SUCCEEDED
        log = env.sim.deliverer.log

        def flushed() -> bool:  # every delivery has gone out twice, held-back ones last
            sent = [d.body for d in log if d.outcome == "sent"]
            return bool(sent) and all(sent.count(d.body) == 2 for d in log)

        await eventually(flushed)
        sent = [d.body for d in log if d.outcome == "sent"]
        order = [_progress(body) for body in sent]
        assert order != sorted(order), "older states arrived after newer ones"
        events = await env.hub.events(task.id)
        assert len(_terminal(events)) == 1
        dispositions = {e.disposition for e in events if e.source is Source.WEBHOOK}
        assert Disposition.DUPLICATE in dispositions
        applied = [e for e in events if e.seq is not None]
        progress = [e.progress or 0 for e in applied if e.status is Status.RUNNING]
        assert progress == sorted(progress), "progress never goes backwards"
        again = await env.hub.get(task.id)
        assert again.status is Status.SUCCEEDED


async def test_late_webhook_after_poll_is_a_harmless_duplicate(tmp_path: Path) -> None:
    async with running(tmp_path, fast_config(delay_s=0.8), **FAST_POLL) as env:
        task = await env.hub.submit("linkrapi", prompt="a paper boat")
        done = await env.wait(task.id)
        assert done.status is Status.SUCCEEDED
        await eventually(lambda: any(d.outcome == "sent" for d in env.sim.deliverer.log))
        events = await env.hub.events(task.id)
        terminal = _terminal(events)
        assert [e.source for e in terminal] == [Source.POLL]
        late = [e for e in events if e.source is Source.WEBHOOK]
        assert late and all(
            e.disposition in (Disposition.DUPLICATE, Disposition.STALE) for e in late
        )
        assert (await env.hub.get(task.id)).outputs == done.outputs


async def test_task_past_its_deadline_times_out(tmp_path: Path) -> None:
    async with running(tmp_path, fast_config(timeout_rate=1.0), **FAST_POLL) as env:
        task = await env.hub.submit("midjourney-api", prompt="a stuck job", deadline_s=0.5)
        done = await env.wait(task.id)
        assert done.status is Status.TIMED_OUT
        assert done.error is not None and done.error.category is ErrorCategory.TIMEOUT
        terminal = _terminal(await env.hub.events(task.id), Status.TIMED_OUT)
        assert len(terminal) == 1 and terminal[0].source is Source.HUB


async def test_provider_timeout_is_reported_as_failed_timeout(tmp_path: Path) -> None:
    knobs = fast_config(timeout_rate=1.0, provider_timeout_s=0.2)
    async with running(tmp_path, knobs) as env:
        task = await env.hub.submit("linkrapi", prompt="a slow one")
        done = await env.wait(task.id)
        assert done.status is Status.FAILED
        assert done.error is not None and done.error.category is ErrorCategory.TIMEOUT


async def test_polls_respect_a_rate_limit(tmp_path: Path) -> None:
    knobs = fast_config(drop_rate=1.0, retry_after_s=1)
    async with running(tmp_path, knobs, **FAST_POLL) as env:
        task = await env.hub.submit("midapi", prompt="an orchard")
        env.sim.config.force_429 = 1  # the first status call is refused
        done = await env.wait(task.id)
        assert done.status is Status.SUCCEEDED
        assert env.sim.calls["midapi.record-info"] >= 2


def _record_releases(monkeypatch: pytest.MonkeyPatch, store: Any) -> list[int]:
    """Sizes of the store's ``release_polls`` calls, each one transaction."""
    sizes: list[int] = []
    release = store.release_polls

    async def recorded(owner: str, releases: Any) -> None:
        sizes.append(len(releases))
        await release(owner, releases)

    monkeypatch.setattr(store, "release_polls", recorded)
    return sizes


async def _lost_webhooks(env: Any, count: int) -> list[str]:
    """``count`` tasks that finish at the provider while every webhook is dropped."""
    ids = [(await env.hub.submit("midapi", prompt=f"lantern {n}")).id for n in range(count)]
    await eventually(lambda: len(env.sim.jobs) == count)
    await eventually(lambda: all(job.phase.done for job in env.sim.jobs.values()))
    return ids


async def test_one_tick_polls_every_due_task_a_batch_per_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 2 * poller.BATCH + 10
    # Only the tick called below may poll: the background one sleeps for an hour.
    knobs = {"poll_after_s": 0.2, "poll_tick_s": 3600.0}
    async with running(tmp_path, fast_config(drop_rate=1.0), **knobs) as env:
        ids = await _lost_webhooks(env, count)
        await asyncio.sleep(0.25)  # every task is now due
        sizes = _record_releases(monkeypatch, env.hub.store)
        assert await env.hub.poller.tick() == count
        assert sizes == [poller.BATCH, poller.BATCH, 10]
        tasks = [await env.hub.get(task_id) for task_id in ids]
        assert {t.status for t in tasks} == {Status.SUCCEEDED}
        assert env.sim.calls["midapi.record-info"] == count


async def test_start_up_sweep_releases_a_chunk_per_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poller, "SWEEP_CHUNK", 40)
    knobs = {"poll_after_s": 3600.0, "poll_tick_s": 3600.0}  # only the sweep below asks
    async with running(tmp_path, fast_config(drop_rate=1.0), **knobs) as env:
        ids = await _lost_webhooks(env, 90)
        sizes = _record_releases(monkeypatch, env.hub.store)
        assert await env.hub.poller.reconcile() == 90
        assert sizes == [40, 40, 10]
        tasks = [await env.hub.get(task_id) for task_id in ids]
        assert {t.status for t in tasks} == {Status.SUCCEEDED}
        # Released, not left leased: a later sweep finds nothing in flight to ask about.
        assert await env.hub.poller.reconcile() == 0
