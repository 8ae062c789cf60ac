"""Simulated jobs and the clock that moves them: pending, running with progress, then done.

Each job runs as one asyncio task. A provider module turns a job into its own JSON (status
bodies and webhooks); the engine only knows the generic phases and calls the job's ``notify``
after every change, which is where webhooks start.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hub.aio import cancel_and_wait
from hub.simulator.config import SimConfig


class Phase(StrEnum):
    """Where a job is; each provider names these its own way."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"

    @property
    def done(self) -> bool:
        """Whether the job has finished, one way or another."""
        return self in (Phase.COMPLETED, Phase.FAILED, Phase.TIMEOUT)


class Outcome(StrEnum):
    """How a job will end, decided when it is created."""

    OK = "ok"
    FAIL = "fail"
    TIMEOUT = "timeout"
    MODERATION = "moderation"


@dataclass
class Job:
    """One simulated generation (an imagine, or an action on an earlier job)."""

    id: str
    provider: str
    key: str
    prompt: str
    base_url: str
    action: str = "imagine"
    webhook_url: str | None = None
    ref: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    index: int | None = None
    outcome: Outcome = Outcome.OK
    error: str | None = None
    speed: float = 1.0
    timeout_s: float | None = None
    phase: Phase = Phase.PENDING
    progress: int = 0
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    #: Provider-specific extras (e.g. the button custom ids of a LinkrAPI grid).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def single(self) -> bool:
        """Whether the result is one image (an upscale) rather than a 2x2 grid."""
        return self.action.startswith("upsample") or self.action == "upscale"

    def asset(self, name: str) -> str:
        """The URL of one of this job's images."""
        return f"{self.base_url}/assets/{self.id}/{name}"

    @property
    def grid_url(self) -> str:
        """The grid (or, for an upscale, the single image)."""
        return self.asset("upscale.png" if self.single else "grid.png")

    @property
    def image_urls(self) -> list[str]:
        """The four images of a grid (empty for an upscale)."""
        return [] if self.single else [self.asset(f"{i}.png") for i in range(4)]

    @property
    def preview_url(self) -> str:
        """A partial render at the current progress."""
        return self.asset(f"preview-{self.progress}.png")


Notify = Callable[[Job], None]


class Engine:
    """Runs jobs; ``slots`` caps how many of one (provider, key) run at once."""

    def __init__(self, config: SimConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: dict[tuple[str, str], asyncio.Semaphore] = {}

    def pick_outcome(self) -> Outcome:
        """Draw how a new job ends, from the fail and timeout rates."""
        roll = self.rng.random()
        if roll < self.config.fail_rate:
            return Outcome.FAIL
        if roll < self.config.fail_rate + self.config.timeout_rate:
            return Outcome.TIMEOUT
        return Outcome.OK

    def start(self, job: Job, notify: Notify, *, slots: int | None = None) -> None:
        """Track ``job`` and run it in the background."""
        self.jobs[job.id] = job
        semaphore = None
        if slots is not None:
            semaphore = self._slots.setdefault((job.provider, job.key), asyncio.Semaphore(slots))
        task = asyncio.create_task(self._run(job, notify, semaphore), name=f"sim-job-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def open_jobs(self, provider: str, key: str) -> int:
        """Jobs of one account that have not finished."""
        jobs = self.jobs.values()
        return sum(1 for j in jobs if j.provider == provider and j.key == key and not j.phase.done)

    async def close(self) -> None:
        """Stop every job where it is."""
        await cancel_and_wait(list(self._tasks))

    async def _run(self, job: Job, notify: Notify, semaphore: asyncio.Semaphore | None) -> None:
        notify(job)
        await asyncio.sleep(self.config.queue_s * job.speed)
        async with semaphore or contextlib.nullcontext():
            job.phase = Phase.RUNNING
            notify(job)
            if job.outcome is Outcome.MODERATION:
                self._finish(job, Phase.FAILED, notify)
                return
            steps = self.config.steps
            for step in range(1, steps + 1):
                await asyncio.sleep(self.config.step_s * job.speed)
                if job.outcome is Outcome.TIMEOUT and step > steps // 2:
                    await self._stall(job, notify)
                    return
                if job.outcome is Outcome.FAIL and step > steps // 2:
                    self._finish(job, Phase.FAILED, notify)
                    return
                if step < steps:
                    job.progress = step * 100 // steps
                    notify(job)
            job.progress = 100
            self._finish(job, Phase.COMPLETED, notify)

    async def _stall(self, job: Job, notify: Notify) -> None:
        limit = self.config.provider_timeout_s
        if limit is None:
            limit = job.timeout_s
        if limit is None:
            await asyncio.Event().wait()  # hangs until the simulator stops
        await asyncio.sleep(max(0.0, job.created_at + (limit or 0.0) - time.time()))
        self._finish(job, Phase.TIMEOUT, notify)

    @staticmethod
    def _finish(job: Job, phase: Phase, notify: Notify) -> None:
        job.phase = phase
        job.finished_at = time.time()
        notify(job)
