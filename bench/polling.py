"""Polling benchmark: how fast one hub process re-checks tasks whose webhooks were lost.

    python -m bench.polling [--tasks 2000]

The provider simulator and a hub (SQLite, ``synchronous=FULL``) run behind real uvicorn
servers on loopback, in this one process and event loop. ``--tasks`` tasks are submitted to
the simulator's midapi with every webhook dropped, and finish there. Then, with the background
poller asleep, it times:

* one poll tick with all of them due: every task leased, its status fetched over HTTP, the
  result applied, and the lease released, a batch per transaction;
* the start-up sweep (``Poller.reconcile``) over the same number of tasks in flight.

It prints tasks checked per second and the number of release transactions for each. The
simulator shares the process, so the figure is a floor for a provider on another host.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub import Status
from hub.store.base import PollRelease
from tests.sim_env import eventually, fast_config, running


async def _submit(env: Any, count: int) -> list[str]:
    gate = asyncio.Semaphore(32)

    async def one(number: int) -> str:
        async with gate:
            return (await env.hub.submit("midapi", prompt=f"lantern {number}")).id

    ids = await asyncio.gather(*(one(n) for n in range(count)))
    await eventually(lambda: all(job.phase.done for job in env.sim.jobs.values()), timeout=120)
    return list(ids)


def _count_releases(store: Any) -> list[int]:
    sizes: list[int] = []
    release = store.release_polls

    async def counted(owner: str, releases: Sequence[PollRelease]) -> None:
        sizes.append(len(releases))
        await release(owner, releases)

    store.release_polls = counted
    return sizes


async def _succeeded(env: Any, ids: list[str]) -> int:
    return sum([(await env.hub.get(i)).status is Status.SUCCEEDED for i in ids])


async def measure(folder: Path, tasks: int, step: str) -> None:
    """Time one tick (``step="tick"``) or one start-up sweep over ``tasks`` lost webhooks."""
    # The poller's own loop sleeps for an hour; the sweep must find the tasks not yet due.
    poll_after_s = 0.2 if step == "tick" else 3600.0
    knobs = {"poll_after_s": poll_after_s, "poll_tick_s": 3600.0, "sqlite_synchronous": "FULL"}
    async with running(folder, fast_config(drop_rate=1.0), **knobs) as env:
        ids = await _submit(env, tasks)
        await asyncio.sleep(0.25)  # past poll_after_s for the tick: every task is due
        sizes = _count_releases(env.hub.store)
        poller = env.hub.poller
        started = time.perf_counter()
        checked = await (poller.tick() if step == "tick" else poller.reconcile())
        took = time.perf_counter() - started
        done = await _succeeded(env, ids)
        label = "one tick:" if step == "tick" else "start-up sweep:"
        print(
            f"{label:16} {checked:>6,} checked, {done:,} completed by it, {took:.2f} s, "
            f"{checked / took:,.0f} checks/s, {len(sizes)} release transactions"
        )


async def main(tasks: int) -> None:
    for step in ("tick", "sweep"):
        with tempfile.TemporaryDirectory() as folder:
            await measure(Path(folder), tasks, step)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.tasks))
