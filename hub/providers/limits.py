"""Per-account concurrency: at most N jobs of one provider account in flight at once.

LinkrAPI runs three fast jobs per hold account (more wait in its queue and eat into their
deadlines); midjourney-api.com refuses past ten. A slot is taken before the submit call and
held until the task is terminal (:meth:`AccountLimiter.on_event`, a dispatcher listener) or the
submit fails. Waiters are served first come, first served. The count is per process and starts
empty: after a restart, jobs submitted before it do not hold slots.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from hub.errors import ConfigError
from hub.models import Event


@dataclass
class _Account:
    capacity: int
    holders: set[str] = field(default_factory=set)
    queue: deque[tuple[str, asyncio.Future[None]]] = field(default_factory=deque)


def parse_limits(raw: str) -> dict[str, int]:
    """``"linkrapi=3,midjourney-api=10"`` → a dict; 0 means no limit."""
    limits: dict[str, int] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        slug, sep, number = part.partition("=")
        try:
            value = int(number)
        except ValueError:
            value = -1
        if not sep or not slug.strip() or value < 0:
            raise ConfigError(f"HUB_PROVIDER_CONCURRENCY: {part.strip()!r} is not slug=N")
        limits[slug.strip()] = value
    return limits


class AccountLimiter:
    """Slots per account key (the provider slug: the hub holds one account per provider)."""

    def __init__(self, capacities: dict[str, int | None]) -> None:
        self._capacities = capacities
        self._accounts: dict[str, _Account] = {}
        self._owner: dict[str, str] = {}

    def in_use(self, account: str) -> int:
        """Slots of ``account`` held right now."""
        state = self._accounts.get(account)
        return len(state.holders) if state else 0

    async def acquire(self, account: str, task_id: str, *, timeout: float) -> None:
        """Take a slot for ``task_id``; raises ``TimeoutError`` if none frees in time."""
        capacity = self._capacities.get(account)
        if not capacity:
            return
        state = self._accounts.setdefault(account, _Account(capacity))
        if len(state.holders) < state.capacity and not state.queue:
            self._hold(state, account, task_id)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.queue.append((task_id, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(task_id)  # the slot was handed over just as we gave up
            else:
                future.cancel()
                state.queue = deque(entry for entry in state.queue if entry[1] is not future)
            raise

    def release(self, task_id: str) -> None:
        """Give back ``task_id``'s slot, if it holds one, to the next waiter."""
        account = self._owner.pop(task_id, None)
        if account is None:
            return
        state = self._accounts[account]
        state.holders.discard(task_id)
        while state.queue and len(state.holders) < state.capacity:
            waiter, future = state.queue.popleft()
            if future.done():
                continue
            self._hold(state, account, waiter)
            future.set_result(None)

    def on_event(self, event: Event) -> None:
        """Dispatcher listener: a terminal task gives its slot back."""
        if event.task_id and event.status is not None and event.status.terminal:
            self.release(event.task_id)

    def _hold(self, state: _Account, account: str, task_id: str) -> None:
        state.holders.add(task_id)
        self._owner[task_id] = account
