"""The store contract: where tasks and events live, and the only writer of both.

Every change goes through :meth:`Store.write`, one batch of operations in one transaction
(group commit). Implementations must serialize ``write`` calls across every process that shares
the database, so that a task's state machine and the fan-out sequence (``seq``) see one order:
SQLite has a single writer per file; PostgreSQL takes a row lock on its counter row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.errors import HubError
from hub.models import Event, Source, Status, Task, Update
from hub.state import dedupe_key


@dataclass(slots=True)
class CreateTask:
    """Register a new task (its id already minted); ``next_poll_at`` schedules its first poll."""

    task: Task
    next_poll_at: float | None = None


@dataclass(slots=True)
class Bind:
    """Record the provider's id for a task; orphaned events with that id are attached."""

    task_id: str
    external_id: str


@dataclass(slots=True)
class Ingest:
    """Store one provider report; ``task_id`` is None when it must be correlated by id/ref."""

    provider: str
    update: Update
    source: Source
    received_at: float
    raw: Any = None
    task_id: str | None = None
    _key: str | None = field(default=None, init=False, repr=False, compare=False)

    def dedupe_key(self) -> str:
        """The update's dedupe key, computed once: a batch asks for it more than once, and
        without a delivery id it is a hash of the normalized content."""
        if self._key is None:
            self._key = dedupe_key(self.update)
        return self._key


WriteOp = CreateTask | Bind | Ingest


@dataclass(slots=True)
class WriteResult:
    """What one operation did. ``error`` is a per-operation refusal; the batch still commits."""

    task: Task | None = None
    events: list[Event] = field(default_factory=list)
    error: HubError | None = None


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Filters for :meth:`Store.list_tasks`; ``before`` is the pagination cursor (a task id)."""

    provider: str | None = None
    status: Status | None = None
    external_id: str | None = None
    parent_id: str | None = None
    before: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class PollClaim:
    """A task leased to one poller; ``attempts`` counts the polls made so far."""

    task: Task
    attempts: int


@dataclass(frozen=True, slots=True)
class PollRelease:
    """The end of one lease: when to poll the task next (None: never) and its polls so far."""

    task_id: str
    next_poll_at: float | None
    attempts: int


class Store(ABC):
    """Durable tasks and events."""

    @abstractmethod
    async def start(self) -> None:
        """Open connections and run migrations."""

    @abstractmethod
    async def close(self) -> None:
        """Close connections; pending writes must already be done."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the database cannot be reached (used by ``/readyz``)."""

    @abstractmethod
    async def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply ``ops`` in order in one committed transaction; one result per operation."""

    @abstractmethod
    async def get_task(self, task_id: str) -> Task | None:
        """The task, or None."""

    @abstractmethod
    async def list_tasks(self, filters: TaskFilter) -> list[Task]:
        """Tasks matching ``filters``, newest first."""

    @abstractmethod
    async def task_events(self, task_id: str) -> list[Event]:
        """Every stored event of a task, in arrival order, duplicates included."""

    @abstractmethod
    async def read_log(self, after_seq: int, limit: int = 1000) -> list[Event]:
        """Applied events with ``seq > after_seq``, in ``seq`` order (the fan-out log)."""

    @abstractmethod
    async def last_seq(self) -> int:
        """The highest committed ``seq`` (0 when the log is empty)."""

    @abstractmethod
    async def first_seq(self) -> int:
        """The lowest ``seq`` still kept (``last_seq() + 1`` when the log is empty)."""

    @abstractmethod
    async def prune_log(self, before: float) -> int:
        """Drop applied events of terminal tasks received before ``before``; returns how many.

        Streams resuming from a pruned ``seq`` get a ``reset`` event instead of a replay.
        """

    @abstractmethod
    async def claim_polls(
        self, owner: str, now: float, lease_s: float, limit: int, *, due_by: float | None = None
    ) -> list[PollClaim]:
        """Lease up to ``limit`` non-terminal tasks whose poll or deadline is due.

        A task is due when ``next_poll_at`` or ``deadline_at`` is at or before ``due_by``
        (default ``now``; start-up reconciliation passes infinity to take every task in
        flight). A task leased at ``now`` is not handed to another owner until ``lease_s`` has
        passed or :meth:`release_polls` runs, so no task is polled by two processes at once.
        """

    @abstractmethod
    async def release_polls(self, owner: str, releases: Sequence[PollRelease]) -> None:
        """End ``owner``'s leases on these tasks in one transaction and schedule their next polls.

        A task whose lease has passed to another owner is left as it is. One transaction for
        the lot: a poller releasing thousands of tasks must not cost thousands of commits.
        """
