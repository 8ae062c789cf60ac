"""The polling fallback: ask the provider about tasks whose webhooks may have been lost.

Every ``poll_tick_s`` the poller leases the tasks that are due (``Store.claim_polls``: their
``next_poll_at`` or deadline has come; a lease keeps two processes from polling one task at
once), a batch at a time until none is left, and for each:

* past its deadline: one last status check, and if that shows nothing final, a
  ``timed_out`` update (source ``hub``, category ``timeout``);
* heard from within ``poll_after_s``: no call, just a later poll (webhooks are doing the job);
* otherwise: the provider's status endpoint, through the same adapter parser and state machine
  as a webhook (source ``poll``). A lost webhook still completes the task; a late webhook after
  the poll is a harmless duplicate. Polls back off exponentially up to ``poll_max_interval_s``
  while nothing changes, and a 429 pauses every poll of that provider for its ``Retry-After``.

On start-up :meth:`Poller.reconcile` checks every task in flight at once, so tasks whose
webhooks arrived while the hub was down are brought up to date without waiting for a poll.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from typing import TYPE_CHECKING

from hub.aio import cancel_and_wait
from hub.errors import HubError
from hub.models import ErrorCategory, ErrorInfo, Source, Status, Task, Update
from hub.providers.client import ProviderError, ProviderRateLimited
from hub.providers.clients import ProviderClients
from hub.store.base import PollClaim, PollRelease

if TYPE_CHECKING:
    from hub.core import Hub

logger = logging.getLogger("hub.poller")

LEASE_S = 120.0
#: Tasks leased, handled and released together by a tick.
BATCH = 50
#: Tasks leased per transaction, and checked and released per transaction, at start-up.
SWEEP_CHUNK = 500
#: Provider calls in flight at once.
PARALLEL = 8


class Poller:
    """Polls overdue tasks and enforces deadlines for one hub process."""

    def __init__(self, hub: Hub, clients: ProviderClients) -> None:
        self.hub = hub
        self.clients = clients
        self.settings = hub.settings
        self.owner = f"poller-{uuid.uuid4().hex[:12]}"
        self._paused_until: dict[str, float] = {}
        self._gate = asyncio.Semaphore(PARALLEL)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Reconcile tasks in flight, then poll every ``poll_tick_s``."""
        self._tasks = [
            asyncio.create_task(self._reconcile_quietly(), name="hub-reconcile"),
            asyncio.create_task(self._run(), name="hub-poller"),
        ]

    async def close(self) -> None:
        """Stop polling; a lease left behind expires on its own."""
        await cancel_and_wait(self._tasks)
        self._tasks = []

    async def tick(self) -> int:
        """Poll everything that is due now; returns how many tasks were leased.

        Leases go a batch at a time, each batch released in one transaction once it has been
        handled, until nothing that was due when the tick began is left. So the pace of checks
        is set by the providers' answers, not by the tick: one batch per tick would fall
        behind with a few thousand tasks in flight.
        """
        due_by = time.time()
        seen: set[str] = set()
        while True:
            claims = await self.hub.store.claim_polls(
                self.owner, time.time(), LEASE_S, BATCH, due_by=due_by
            )
            releases = await asyncio.gather(*(self._handle(claim) for claim in claims))
            await self.hub.store.release_polls(self.owner, releases)
            ids = {claim.task.id for claim in claims}
            # Every release is scheduled after ``due_by``, so a task comes back within one
            # tick only if the clock stepped backwards: stop rather than poll it in a loop.
            if len(claims) < BATCH or ids & seen:
                return len(seen | ids)
            seen |= ids

    async def reconcile(self) -> int:
        """Check every bound task in flight with its provider; returns how many were asked.

        Runs at start-up. It takes the same leases as polling, so replicas starting together
        split the tasks between them instead of each asking about all of them. Every lease is
        taken first (a task released during the sweep would be due again by its horizon), then
        the tasks are checked and released a chunk at a time, one transaction per chunk.
        """
        claims: list[PollClaim] = []
        while True:
            batch = await self.hub.store.claim_polls(
                self.owner, time.time(), LEASE_S, SWEEP_CHUNK, due_by=math.inf
            )
            claims += batch
            if len(batch) < SWEEP_CHUNK:
                break
        asked = 0
        for start in range(0, len(claims), SWEEP_CHUNK):
            chunk = claims[start : start + SWEEP_CHUNK]
            outcomes = await asyncio.gather(*(self._reconcile_one(c) for c in chunk))
            await self.hub.store.release_polls(self.owner, [release for release, _ in outcomes])
            asked += sum(was_asked for _, was_asked in outcomes)
        if asked:
            logger.info("reconciled %d task(s) in flight", asked)
        return asked

    # -- internals -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # the store may be briefly unavailable; try again next tick
                logger.warning("poll tick failed", exc_info=True)
            await asyncio.sleep(self.settings.poll_tick_s)

    async def _reconcile_quietly(self) -> None:
        try:
            await self.reconcile()
        except Exception:
            logger.warning("start-up reconciliation failed", exc_info=True)

    async def _handle(self, claim: PollClaim) -> PollRelease:
        task = claim.task
        try:
            next_at, attempts = await self._poll(task, claim.attempts)
        except Exception:  # one bad task must not stop the others
            logger.warning("polling %s failed", task.id, exc_info=True)
            next_at, attempts = time.time() + self._interval(claim.attempts), claim.attempts + 1
        return PollRelease(task.id, next_at, attempts)

    async def _reconcile_one(self, claim: PollClaim) -> tuple[PollRelease, bool]:
        """Check one task at start-up; its release, and whether its provider was asked."""
        task = claim.task
        asked = bool(task.external_id and self.clients.get(task.provider))
        outcome = None
        if asked:
            try:
                outcome = await self._check(task)
            except Exception:  # one bad task must not stop the others
                logger.warning("reconciling %s failed", task.id, exc_info=True)
        done = outcome is not None and outcome.terminal
        next_at = None if done else time.time() + self.settings.poll_after_s
        return PollRelease(task.id, next_at, claim.attempts), asked

    async def _poll(self, task: Task, attempts: int) -> tuple[float | None, int]:
        now = time.time()
        if task.deadline_at is not None and now >= task.deadline_at:
            await self._expire(task)
            return None, attempts
        if self.clients.get(task.provider) is None:
            return None, attempts  # no API to ask: only the deadline can end it
        if task.external_id is None:
            return now + self._interval(attempts), attempts + 1  # not bound yet: ask later
        heard = task.last_event_at or task.created_at
        if now - heard < self.settings.poll_after_s:
            return heard + self.settings.poll_after_s, attempts
        paused = self._paused_until.get(task.provider, 0.0)
        if now < paused:
            return paused, attempts
        outcome = await self._check(task)
        if outcome is None:
            return now + self._interval(attempts), attempts + 1
        if outcome.terminal:
            return None, attempts
        # Something changed: keep the pace; nothing did: back off.
        moved = outcome.updated_at > task.updated_at
        return now + self._interval(0 if moved else attempts), 0 if moved else attempts + 1

    async def _check(self, task: Task) -> Task | None:
        """Fetch ``task``'s status and apply it; None when the provider could not say."""
        client = self.clients.get(task.provider)
        if client is None or task.external_id is None:
            return None
        async with self._gate:
            try:
                fetched = await client.fetch(task.external_id)
            except ProviderRateLimited as exc:
                self.hub.metrics.poll_call(task.provider, "rate_limited")
                pause = exc.retry_after if exc.retry_after is not None else self._interval(1)
                self._paused_until[task.provider] = time.time() + pause
                return None
            except (ProviderError, HubError) as exc:
                self.hub.metrics.poll_call(task.provider, "error")
                logger.info("status of %s at %s: %s", task.id, task.provider, exc.message)
                return None
        self.hub.metrics.poll_call(task.provider, "ok")
        result = await self.hub.receive(
            task.provider, fetched.update, task_id=task.id, raw=fetched.raw, source=Source.POLL
        )
        return result.task

    async def _expire(self, task: Task) -> None:
        checked = await self._check(task) if task.external_id else None
        if checked is not None and checked.terminal:
            return
        update = Update(
            status=Status.TIMED_OUT,
            provider_status="deadline",
            error=ErrorInfo(
                ErrorCategory.TIMEOUT, "no result before the task's deadline", "deadline", True
            ),
        )
        await self.hub.receive(task.provider, update, task_id=task.id, source=Source.HUB)

    def _interval(self, attempts: int) -> float:
        interval = self.settings.poll_after_s * 2.0 ** min(attempts, 16)
        return float(min(self.settings.poll_max_interval_s, interval))
