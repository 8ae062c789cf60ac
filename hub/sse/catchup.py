"""What a stream sends before it goes live: a replay from the log, a snapshot, or a ``reset``.

The order that makes resume exact (nothing missed, nothing twice):

1. :meth:`CatchUp.prepare` reads what decides the opening (is the resume id still kept? the
   task's snapshot) and sets ``floor``, the last ``seq`` the client has or will get from it;
2. the stream registers with the fan-out at the dispatcher's cursor C: live events ``> C``
   are buffered from then on, and those ``<= floor`` are dropped;
3. :meth:`CatchUp.run` writes the opening and replays ``(floor, C]`` from the store, which
   holds everything up to C because the dispatcher only delivers committed events.

A resume id the log no longer covers (pruned, or a ``seq`` never issued: Mercure #704) gets an
explicit ``reset`` event with the current state instead of a silent gap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from hub.errors import TaskNotFound
from hub.models import Disposition, Event, EventType, Status, Task
from hub.sse.filters import EventFilter
from hub.sse.frames import event_frame, named_frame
from hub.sse.metadata import MetadataCache
from hub.store.base import Store, TaskFilter

Write = Callable[[bytes], Awaitable[None]]

PAGE = 500
#: Most tasks a ``reset`` of a stream that is not scoped to task ids lists, per status.
RESET_TASKS = 200
_ACTIVE = (Status.QUEUED, Status.RUNNING, Status.AWAITING_INPUT)

EXPIRED = "expired"  # older than what the log keeps
UNKNOWN_ID = "unknown_id"  # a seq this hub never issued


class CatchUp(ABC):
    """The opening of one stream."""

    #: Events with ``seq <= floor`` are never written by the live fan-out.
    floor = 0
    #: 204 when there is nothing to stream (a finished task the client has all of).
    status = 200

    @abstractmethod
    async def prepare(self) -> None:
        """Reads made before the stream registers."""

    @abstractmethod
    async def run(self, write: Write, cursor: int) -> bool:
        """Write the opening up to ``cursor``; True when the stream must end right after."""


class LogCatchUp(CatchUp):
    """``/v1/events``: replay the fan-out log after ``last_event_id``, or reset."""

    def __init__(
        self,
        store: Store,
        metadata: MetadataCache,
        event_filter: EventFilter,
        last_event_id: int | None,
        *,
        is_open: Callable[[], bool],
    ) -> None:
        self._store = store
        self._metadata = metadata
        self._filter = event_filter
        self._after = last_event_id
        self._is_open = is_open
        self._reset: str | None = None

    async def prepare(self) -> None:
        if self._after is None:
            return
        self._reset = await _resume_problem(self._store, self._after)
        # On a reset the client restarts from the cursor; its own id must not hide anything.
        self.floor = 0 if self._reset else self._after

    async def run(self, write: Write, cursor: int) -> bool:
        if self._after is None:
            return False
        if self._reset is None and await self._replay(write, cursor):
            return False
        tasks, truncated = await self._scope_tasks()
        data = {
            "reason": self._reset or EXPIRED,
            "last_event_id": cursor,
            "tasks": [t.to_dict() for t in tasks],
            "truncated": truncated,
        }
        await write(named_frame("reset", data, cursor))
        return False

    async def _replay(self, write: Write, cursor: int) -> bool:
        """Write ``(after, cursor]``; False when the log has a hole (pruned meanwhile)."""
        expected = (self._after or 0) + 1
        while expected <= cursor and self._is_open():
            page = await self._store.read_log(expected - 1, limit=PAGE)
            if not page:
                return False
            chunk = []
            for event in page:
                seq = event.seq or 0
                if seq > cursor:
                    break
                if seq != expected:  # seqs are issued without gaps: these were pruned
                    return False
                expected += 1
                if await _wanted(event, self._filter, self._metadata):
                    chunk.append(event_frame(event))
            if chunk:
                await write(b"".join(chunk))
        return True

    async def _scope_tasks(self) -> tuple[list[Task], bool]:
        event_filter = self._filter
        if event_filter.task_ids:
            found = [await self._store.get_task(t) for t in sorted(event_filter.task_ids)]
            return [t for t in found if t is not None], False
        tasks: list[Task] = []
        truncated = False
        for status in _ACTIVE:
            if event_filter.statuses and status.value not in event_filter.statuses:
                continue
            page = await self._store.list_tasks(TaskFilter(status=status, limit=RESET_TASKS))
            truncated = truncated or len(page) == RESET_TASKS
            tasks += [
                t
                for t in page
                if (not event_filter.providers or t.provider in event_filter.providers)
                and event_filter.matches_metadata(t.metadata)
            ]
        return tasks, truncated


class TaskCatchUp(CatchUp):
    """``/v1/tasks/{id}/events``: the task's state (or a replay after ``last_event_id``)."""

    def __init__(
        self, store: Store, task_id: str, last_event_id: int | None, *, until_terminal: bool
    ) -> None:
        self._store = store
        self._task_id = task_id
        self._after = last_event_id
        self._until_terminal = until_terminal
        self._opening: str | None = "state"
        self._reset: str | None = None
        self._task: Task | None = None

    async def prepare(self) -> None:
        task = await self._store.get_task(self._task_id)
        if task is None:
            raise TaskNotFound(self._task_id)
        if self._after is not None:
            events = _applied(await self._store.task_events(self._task_id))
            last_own = (events[-1].seq or 0) if events else 0
            if task.terminal and self._until_terminal and self._after >= last_own:
                self.status = 204  # finished, and the client has it all: EventSource stops
                return
            self._reset = await _resume_problem(self._store, self._after)
            if self._reset is None and _pruned_before(events, self._after):
                self._reset = EXPIRED
            if self._reset is None:
                self._opening = None
                self.floor = self._after
                return
            self._opening = "reset"
        self._task, self.floor = await self._snapshot()

    async def run(self, write: Write, cursor: int) -> bool:
        if self._opening is not None and self._task is not None:
            task = self._task.to_dict()
            data: dict[str, Any] = task
            if self._reset is not None:
                data = {"reason": self._reset, "task": task}
            # A task whose events were all pruned has no seq of its own: the cursor stands in,
            # so a browser that reconnects after the end gets 204, not the state again.
            await write(named_frame(self._opening, data, self.floor or cursor))
            if self._task.terminal and self._until_terminal:
                return True
        replay = [
            e
            for e in _applied(await self._store.task_events(self._task_id))
            if self.floor < (e.seq or 0) <= cursor
        ]
        if replay:
            await write(b"".join(event_frame(e) for e in replay))
        return self._until_terminal and any(e.status and e.status.terminal for e in replay)

    async def _snapshot(self) -> tuple[Task, int]:
        """The task and the last ``seq`` its state reflects, read consistently.

        Reads are not one transaction: the task is read between two reads of its events and
        kept when no event of it was committed in between (three tries, then the newest).
        """
        before = _last_seq(await self._store.task_events(self._task_id))
        for attempt in range(3):
            task = await self._store.get_task(self._task_id)
            if task is None:
                raise TaskNotFound(self._task_id)
            after = _last_seq(await self._store.task_events(self._task_id))
            if after == before or attempt == 2:
                return task, after
            before = after
        raise AssertionError("unreachable")


async def _resume_problem(store: Store, after: int) -> str | None:
    """Why the log cannot resume after ``after``, or None when it can."""
    if after > await store.last_seq():
        return UNKNOWN_ID
    if after < await store.first_seq() - 1:
        return EXPIRED
    return None


async def _wanted(event: Event, event_filter: EventFilter, metadata: MetadataCache) -> bool:
    if not event_filter.matches_event(event):
        return False
    if not event_filter.meta:
        return True
    return event_filter.matches_metadata(await metadata.fetch(event.task_id))


def _applied(events: list[Event]) -> list[Event]:
    applied = [e for e in events if e.disposition is Disposition.APPLIED and e.seq is not None]
    return sorted(applied, key=lambda e: e.seq or 0)


def _last_seq(events: list[Event]) -> int:
    applied = _applied(events)
    return (applied[-1].seq or 0) if applied else 0


def _pruned_before(events: list[Event], after: int) -> bool:
    """Whether events of this task after ``after`` may have been pruned.

    Pruning drops a finished task's oldest events first, and the first is always its
    ``task.created``: when that one is gone, anything below the oldest kept ``seq`` may be.
    """
    if any(e.type is EventType.CREATED for e in events):
        return False
    oldest = (events[0].seq or 0) if events else None
    return oldest is None or after < oldest - 1
