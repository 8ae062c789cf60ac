"""In-process waiters: futures keyed by task id, resolved by the dispatcher.

Waiters hold no state the store does not have: :meth:`hub.Hub.wait` registers its future
*before* it reads the task, so an event committed in between is never missed, and removes it
when it returns, times out or is cancelled, so none leaks.
"""

from __future__ import annotations

import asyncio

from hub.models import Event


class Waiters:
    """Futures that complete when a task reaches a terminal status."""

    def __init__(self) -> None:
        self._by_task: dict[str, set[asyncio.Future[Event]]] = {}

    def __len__(self) -> int:
        return sum(len(futures) for futures in self._by_task.values())

    def add(self, task_id: str) -> asyncio.Future[Event]:
        """A future for ``task_id``'s terminal event; pair every call with :meth:`discard`."""
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._by_task.setdefault(task_id, set()).add(future)
        return future

    def discard(self, task_id: str, future: asyncio.Future[Event]) -> None:
        """Forget ``future``."""
        futures = self._by_task.get(task_id)
        if futures is None:
            return
        futures.discard(future)
        if not futures:
            del self._by_task[task_id]

    def on_event(self, event: Event) -> None:
        """Dispatcher listener: wake the waiters of a task that just finished."""
        if event.status is None or not event.status.terminal or event.task_id is None:
            return
        for future in self._by_task.get(event.task_id, ()):
            if not future.done():
                future.set_result(event)
