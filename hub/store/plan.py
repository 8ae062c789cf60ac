"""Planning one write batch: the state machine run over loaded rows, shared by every store.

A store loads what a batch touches (:class:`Snapshot`, from the keys :func:`wanted` names),
the planner decides every operation in order in memory (:func:`plan`), and the store writes the
resulting rows in one transaction. Operations later in a batch see the effects of earlier ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.errors import HubError, TaskNotFound
from hub.models import Disposition, Event, EventType, Source, Status, Task, Update
from hub.state import apply, decide
from hub.store.base import Bind, CreateTask, Ingest, WriteOp, WriteResult


class AlreadyBound(HubError):
    """The task, or the provider id, is already bound to something else."""

    status_code = 409
    code = "already_bound"


def orphan_scope(provider: str, external_id: str) -> str:
    """The dedupe scope of events that no task claims yet."""
    return f"orphan\x00{provider}\x00{external_id}"


@dataclass(slots=True)
class Snapshot:
    """The rows a batch touches, as loaded inside its transaction."""

    tasks: dict[str, Task] = field(default_factory=dict)
    by_external: dict[tuple[str, str], str] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    orphans: dict[tuple[str, str], list[tuple[Event, str]]] = field(default_factory=dict)
    #: Each loaded task's :func:`state_beyond_progress`, as it was before the batch.
    loaded: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def add_task(self, task: Task) -> None:
        """Index a loaded task by id and by provider id."""
        self.tasks[task.id] = task
        self.loaded[task.id] = state_beyond_progress(task)
        if task.external_id:
            self.by_external[(task.provider, task.external_id)] = task.id


def state_beyond_progress(task: Task) -> tuple[Any, ...]:
    """Everything in a task's row that a report may change, but its progress and timestamps."""
    return (task.status, task.external_id, task.outputs, task.actions, task.error)


@dataclass(slots=True)
class Plan:
    """Rows to write for one batch, and the results to hand back."""

    results: list[WriteResult] = field(default_factory=list)
    new_tasks: dict[str, Task] = field(default_factory=dict)
    changed_tasks: dict[str, Task] = field(default_factory=dict)
    new_events: list[tuple[Event, str]] = field(default_factory=list)
    attached: list[Event] = field(default_factory=list)
    first_polls: dict[str, float] = field(default_factory=dict)
    #: Changed tasks whose row changed only in progress and timestamps. Most webhooks are
    #: such progress reports, and a store can write them without touching the status and
    #: provider-id indexes.
    progress_only: set[str] = field(default_factory=set)

    @property
    def emitted(self) -> list[Event]:
        """Applied events in ``seq`` order: what the bus must carry after commit."""
        events = [e for e, _ in self.new_events if e.seq is not None] + [
            e for e in self.attached if e.seq is not None
        ]
        return sorted(events, key=lambda e: e.seq or 0)


def wanted_task_ids(ops: Sequence[WriteOp]) -> set[str]:
    """Task ids a batch reads (explicit ids, and echoed refs that may be task ids)."""
    ids: set[str] = set()
    for op in ops:
        if isinstance(op, Bind):
            ids.add(op.task_id)
        elif isinstance(op, Ingest):
            if op.task_id:
                ids.add(op.task_id)
            elif op.update.client_ref:
                ids.add(op.update.client_ref)
    return ids


def wanted_externals(ops: Sequence[WriteOp], snapshot: Snapshot) -> set[tuple[str, str]]:
    """(provider, provider id) pairs a batch correlates or binds, given the loaded tasks."""
    pairs: set[tuple[str, str]] = set()
    for op in ops:
        if isinstance(op, CreateTask) and op.task.external_id:
            pairs.add((op.task.provider, op.task.external_id))
        elif isinstance(op, Bind) and op.task_id in snapshot.tasks:
            pairs.add((snapshot.tasks[op.task_id].provider, op.external_id))
        elif isinstance(op, Ingest) and op.update.provider_task_id:
            task = snapshot.tasks.get(op.task_id) if op.task_id else None
            # A task that is already bound needs no look-up: the common, cheap case.
            if task is None or not task.external_id:
                pairs.add((op.provider, op.update.provider_task_id))
    return pairs


def seen_candidates(ops: Sequence[WriteOp], snapshot: Snapshot) -> set[tuple[str, str]]:
    """The (scope, dedupe key) pairs a batch may repeat: look these up exactly, not as the
    cross product of scopes and keys, which grows with the square of the batch."""
    pairs: set[tuple[str, str]] = set()
    for op in ops:
        if not isinstance(op, Ingest):
            continue
        key = op.dedupe_key()
        task_id = op.task_id
        ref = op.update.client_ref
        external = op.update.provider_task_id
        if task_id is None and ref in snapshot.tasks:
            task_id = ref
        if task_id is None and external:
            task_id = snapshot.by_external.get((op.provider, external))
        if task_id is not None:
            pairs.add((task_id, key))
        elif external:
            pairs.add((orphan_scope(op.provider, external), key))
    return pairs


class Planner:
    """Decides a batch in memory; ``next_id``/``next_seq`` are the store's counters."""

    def __init__(self, snapshot: Snapshot, next_id: int, next_seq: int) -> None:
        self.snapshot = snapshot
        self.next_id = next_id
        self.next_seq = next_seq
        self.plan = Plan()

    def run(self, ops: Sequence[WriteOp]) -> Plan:
        """Decide every operation in order."""
        for op in ops:
            if isinstance(op, CreateTask):
                result = self._create(op)
            elif isinstance(op, Bind):
                result = self._bind(op)
            else:
                result = self._ingest(op)
            self.plan.results.append(result)
        loaded = self.snapshot.loaded
        for task_id, task in self.plan.changed_tasks.items():
            if loaded.get(task_id) == state_beyond_progress(task):
                self.plan.progress_only.add(task_id)
        return self.plan

    def _create(self, op: CreateTask) -> WriteResult:
        task = op.task
        key = (task.provider, task.external_id) if task.external_id else None
        if key and key in self.snapshot.by_external:
            return WriteResult(error=AlreadyBound(f"{key[0]} task {key[1]!r} is already bound"))
        self.snapshot.add_task(task)
        self.plan.new_tasks[task.id] = task
        if op.next_poll_at is not None:
            self.plan.first_polls[task.id] = op.next_poll_at
        created = self._event(
            task_id=task.id,
            provider=task.provider,
            provider_task_id=task.external_id,
            update=Update(status=task.status),
            disposition=Disposition.APPLIED,
            event_type=EventType.CREATED,
            source=Source.HUB,
            received_at=task.created_at,
            raw=None,
        )
        self.plan.new_events.append((created, "created"))
        events = [created]
        if key:
            events += self._attach_orphans(task, key, task.created_at)
        return WriteResult(task=task, events=events)

    def _bind(self, op: Bind) -> WriteResult:
        task = self.snapshot.tasks.get(op.task_id)
        if task is None:
            return WriteResult(error=TaskNotFound(op.task_id))
        if task.external_id == op.external_id:
            return WriteResult(task=task)
        if task.external_id:
            return WriteResult(error=AlreadyBound(f"task {task.id} is bound to another id"))
        key = (task.provider, op.external_id)
        if key in self.snapshot.by_external:
            return WriteResult(error=AlreadyBound(f"{key[0]} task {key[1]!r} is already bound"))
        task.external_id = op.external_id
        self.snapshot.by_external[key] = task.id
        self._touch(task)
        events = self._attach_orphans(task, key, task.updated_at)
        return WriteResult(task=task, events=events)

    def _ingest(self, op: Ingest) -> WriteResult:
        task = self._correlate(op)
        key = op.dedupe_key()
        if task is None:
            if op.task_id:
                return WriteResult(error=TaskNotFound(op.task_id))
            return self._store_orphan(op, key)
        seen = (task.id, key) in self.snapshot.seen
        decision = decide(task, op.update, seen=seen)
        if decision.disposition is Disposition.APPLIED:
            apply(task, op.update, op.received_at)
            self._touch(task)
        self.snapshot.seen.add((task.id, key))
        event = self._event(
            task_id=task.id,
            provider=task.provider,
            provider_task_id=op.update.provider_task_id or task.external_id,
            update=op.update,
            disposition=decision.disposition,
            event_type=decision.event_type,
            source=op.source,
            received_at=op.received_at,
            raw=op.raw,
        )
        self.plan.new_events.append((event, key))
        attached = self._learn_external(task, op.update.provider_task_id, op.received_at)
        return WriteResult(task=task, events=[event, *attached])

    def _correlate(self, op: Ingest) -> Task | None:
        if op.task_id:
            return self.snapshot.tasks.get(op.task_id)
        ref = op.update.client_ref
        if ref and ref in self.snapshot.tasks and self.snapshot.tasks[ref].provider == op.provider:
            return self.snapshot.tasks[ref]
        external = op.update.provider_task_id
        if external:
            task_id = self.snapshot.by_external.get((op.provider, external))
            if task_id:
                return self.snapshot.tasks.get(task_id)
        return None

    def _learn_external(self, task: Task, external: str | None, now: float) -> list[Event]:
        """Bind the provider id a webhook reports, when the task has none and no one else has it.

        A webhook can beat the submit response that would have bound it.
        """
        if not external or task.external_id:
            return []
        key = (task.provider, external)
        if key in self.snapshot.by_external:
            return []
        task.external_id = external
        self.snapshot.by_external[key] = task.id
        self._touch(task)
        return self._attach_orphans(task, key, now)

    def _store_orphan(self, op: Ingest, key: str) -> WriteResult:
        external = op.update.provider_task_id
        if not external:
            # Nothing could ever claim it; the route refuses these before they get here.
            return WriteResult(error=TaskNotFound("(no task id, provider id or ref)"))
        scope = orphan_scope(op.provider, external)
        seen = (scope, key) in self.snapshot.seen
        self.snapshot.seen.add((scope, key))
        event = self._event(
            task_id=None,
            provider=op.provider,
            provider_task_id=external,
            update=op.update,
            disposition=Disposition.DUPLICATE if seen else Disposition.ORPHAN,
            event_type=None,
            source=op.source,
            received_at=op.received_at,
            raw=op.raw,
        )
        self.plan.new_events.append((event, key))
        if not seen:
            self.snapshot.orphans.setdefault((op.provider, external), []).append((event, key))
        return WriteResult(events=[event])

    def _attach_orphans(self, task: Task, pair: tuple[str, str], now: float) -> list[Event]:
        attached = []
        for event, key in self.snapshot.orphans.pop(pair, []):
            update = _as_update(event)
            seen = (task.id, key) in self.snapshot.seen
            decision = decide(task, update, seen=seen)
            self.snapshot.seen.add((task.id, key))
            if decision.disposition is Disposition.APPLIED:
                apply(task, update, now)
                self._touch(task)
                event.seq = self._take_seq()
            event.task_id = task.id
            event.disposition = decision.disposition
            event.type = decision.event_type
            if not any(event is new for new, _ in self.plan.new_events):
                self.plan.attached.append(event)
            attached.append(event)
        return attached

    def _event(
        self,
        *,
        task_id: str | None,
        provider: str,
        provider_task_id: str | None,
        update: Update,
        disposition: Disposition,
        event_type: EventType | None,
        source: Source,
        received_at: float,
        raw: object,
    ) -> Event:
        event_id = self.next_id
        self.next_id += 1
        applied = disposition is Disposition.APPLIED
        return Event(
            id=event_id,
            seq=self._take_seq() if applied else None,
            task_id=task_id,
            provider=provider,
            type=event_type,
            status=update.status,
            disposition=disposition,
            source=source,
            received_at=received_at,
            provider_task_id=provider_task_id,
            provider_status=update.provider_status,
            progress=update.progress,
            outputs=list(update.outputs),
            actions=list(update.actions),
            error=update.error,
            raw=raw,
        )

    def _take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def _touch(self, task: Task) -> None:
        if task.id not in self.plan.new_tasks:
            self.plan.changed_tasks[task.id] = task


def _as_update(event: Event) -> Update:
    return Update(
        status=event.status,
        provider_status=event.provider_status,
        provider_task_id=event.provider_task_id,
        progress=event.progress,
        outputs=tuple(event.outputs),
        actions=tuple(event.actions),
        error=event.error,
    )


__all__ = ["AlreadyBound", "Plan", "Planner", "Snapshot", "Status"]
