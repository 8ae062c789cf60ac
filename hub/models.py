"""The normalized event model: statuses, outputs, errors, tasks and events.

Every provider adapter turns its own webhook or status body into an :class:`Update`; the
state machine (:mod:`hub.state`) turns an update into a stored :class:`Event` and the task's new
state. Everything a subscriber, a waiter or the HTTP API sees is one of these types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """A task's normalized status."""

    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_INPUT = "awaiting_input"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"

    @property
    def terminal(self) -> bool:
        """Whether the status is final: nothing moves a task out of it."""
        return self in _TERMINAL

    @property
    def rank(self) -> int:
        """Order of the lifecycle: queued < running/awaiting_input < terminal."""
        return _RANK[self]


_TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED, Status.TIMED_OUT})
_RANK = {
    Status.QUEUED: 0,
    Status.RUNNING: 1,
    Status.AWAITING_INPUT: 1,
    Status.SUCCEEDED: 2,
    Status.FAILED: 2,
    Status.CANCELED: 2,
    Status.TIMED_OUT: 2,
}


class EventType(StrEnum):
    """What an event announces."""

    CREATED = "task.created"
    PROGRESS = "task.progress"
    INPUT_REQUIRED = "task.input_required"
    SUCCEEDED = "task.succeeded"
    FAILED = "task.failed"
    CANCELED = "task.canceled"
    TIMED_OUT = "task.timed_out"

    @classmethod
    def for_status(cls, status: Status) -> EventType:
        """The event type that announces a move into ``status``."""
        return _TYPE_FOR_STATUS[status]


_TYPE_FOR_STATUS = {
    Status.QUEUED: EventType.PROGRESS,
    Status.RUNNING: EventType.PROGRESS,
    Status.AWAITING_INPUT: EventType.INPUT_REQUIRED,
    Status.SUCCEEDED: EventType.SUCCEEDED,
    Status.FAILED: EventType.FAILED,
    Status.CANCELED: EventType.CANCELED,
    Status.TIMED_OUT: EventType.TIMED_OUT,
}


class Disposition(StrEnum):
    """What the state machine did with a stored event.

    Only ``applied`` events move a task and are fanned out; the rest are kept for inspection.
    """

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    ORPHAN = "orphan"
    UNRECOGNISED = "unrecognised"


class Source(StrEnum):
    """Where an event came from."""

    WEBHOOK = "webhook"
    POLL = "poll"
    SUBMIT = "submit"
    HUB = "hub"


class ErrorCategory(StrEnum):
    """Why a task failed, across providers."""

    MODERATION = "moderation"
    INVALID_REQUEST = "invalid_request"
    QUOTA = "quota"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    UPSTREAM = "upstream"
    PROVIDER_INTERNAL = "provider_internal"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Output:
    """One result file: the grid, one of its images, an upscale or a video."""

    url: str
    role: str = "image"  # grid | image | upscale | video | thumbnail | preview
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``dataclasses.asdict`` deep-copies; this is the hot path)."""
        return {"url": self.url, "role": self.role, "index": self.index}


@dataclass(frozen=True, slots=True)
class Action:
    """A follow-up the provider offers on a finished task (upscale 1, variation 3, reroll)."""

    kind: str  # upscale | variation | reroll | other
    index: int | None = None
    provider_ref: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {"kind": self.kind, "index": self.index, "provider_ref": self.provider_ref}


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a task failed."""

    category: ErrorCategory
    message: str
    code: str | None = None
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class Update:
    """One provider report, normalized by an adapter; ``status`` is None when unrecognised."""

    status: Status | None
    provider_status: str | None = None
    provider_task_id: str | None = None
    progress: int | None = None
    outputs: tuple[Output, ...] = ()
    actions: tuple[Action, ...] = ()
    error: ErrorInfo | None = None
    client_ref: str | None = None
    delivery_id: str | None = None


@dataclass(slots=True)
class Task:
    """A unit of provider work the hub tracks, with its current normalized state."""

    id: str
    provider: str
    status: Status
    created_at: float
    updated_at: float
    external_id: str | None = None
    parent_id: str | None = None
    progress: int | None = None
    outputs: list[Output] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    error: ErrorInfo | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    deadline_at: float | None = None
    last_event_at: float | None = None

    @property
    def terminal(self) -> bool:
        """Whether the task has reached a final status."""
        return self.status.terminal

    def clone(self) -> Task:
        """A copy that later state changes to either side do not reach.

        Shallow on purpose: the state machine replaces lists rather than mutating them.
        """
        return Task(
            self.id,
            self.provider,
            self.status,
            self.created_at,
            self.updated_at,
            self.external_id,
            self.parent_id,
            self.progress,
            self.outputs,
            self.actions,
            self.error,
            self.metadata,
            self.deadline_at,
            self.last_event_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """The task as plain JSON-ready data."""
        return {
            "id": self.id,
            "provider": self.provider,
            "status": self.status.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "external_id": self.external_id,
            "parent_id": self.parent_id,
            "progress": self.progress,
            "outputs": [o.as_dict() for o in self.outputs],
            "actions": [a.as_dict() for a in self.actions],
            "error": error_dict(self.error),
            "metadata": self.metadata,
            "deadline_at": self.deadline_at,
            "last_event_at": self.last_event_at,
        }


@dataclass(slots=True)
class Event:
    """A stored event. ``seq`` is its place in the fan-out log (the SSE id) when applied."""

    id: int
    seq: int | None
    task_id: str | None
    provider: str
    type: EventType | None
    status: Status | None
    disposition: Disposition
    source: Source
    received_at: float
    provider_task_id: str | None = None
    provider_status: str | None = None
    progress: int | None = None
    outputs: list[Output] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    error: ErrorInfo | None = None
    raw: Any = None
    _encoded: bytes | None = field(default=None, repr=False, compare=False)

    def to_dict(self, *, with_raw: bool = False) -> dict[str, Any]:
        """The event as plain JSON-ready data; ``raw`` only on request."""
        data: dict[str, Any] = {
            "id": self.id,
            "seq": self.seq,
            "task_id": self.task_id,
            "provider": self.provider,
            "provider_task_id": self.provider_task_id,
            "type": self.type.value if self.type else None,
            "status": self.status.value if self.status else None,
            "provider_status": self.provider_status,
            "progress": self.progress,
            "outputs": [o.as_dict() for o in self.outputs],
            "actions": [a.as_dict() for a in self.actions],
            "error": error_dict(self.error),
            "disposition": self.disposition.value,
            "source": self.source.value,
            "received_at": self.received_at,
        }
        if with_raw:
            data["raw"] = self.raw
        return data

    def encoded(self) -> bytes:
        """The public JSON of the event, encoded once however many streams carry it."""
        if self._encoded is None:
            self._encoded = json.dumps(self.to_dict(), separators=(",", ":")).encode()
        return self._encoded


def error_dict(error: ErrorInfo | None) -> dict[str, Any] | None:
    """An error as plain JSON-ready data (None stays None)."""
    if error is None:
        return None
    return {
        "category": error.category.value,
        "code": error.code,
        "message": error.message,
        "retryable": error.retryable,
    }


def outputs_from_data(items: Any) -> list[Output]:
    """Rebuild outputs from stored JSON."""
    return [Output(**o) for o in items or ()]


def actions_from_data(items: Any) -> list[Action]:
    """Rebuild actions from stored JSON."""
    return [Action(**a) for a in items or ()]


def error_from_data(data: Any) -> ErrorInfo | None:
    """Rebuild an error from stored JSON."""
    if not data:
        return None
    return ErrorInfo(
        category=ErrorCategory(data["category"]),
        message=data["message"],
        code=data.get("code"),
        retryable=bool(data.get("retryable", False)),
    )


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from :meth:`Event.to_dict` output (used by remote buses and clients)."""
    return Event(
        id=data["id"],
        seq=data.get("seq"),
        task_id=data.get("task_id"),
        provider=data["provider"],
        type=EventType(data["type"]) if data.get("type") else None,
        status=Status(data["status"]) if data.get("status") else None,
        disposition=Disposition(data["disposition"]),
        source=Source(data["source"]),
        received_at=data["received_at"],
        provider_task_id=data.get("provider_task_id"),
        provider_status=data.get("provider_status"),
        progress=data.get("progress"),
        outputs=outputs_from_data(data.get("outputs")),
        actions=actions_from_data(data.get("actions")),
        error=error_from_data(data.get("error")),
        raw=data.get("raw"),
    )


def task_from_dict(data: dict[str, Any]) -> Task:
    """Rebuild a task from :meth:`Task.to_dict` output."""
    return Task(
        id=data["id"],
        provider=data["provider"],
        status=Status(data["status"]),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        external_id=data.get("external_id"),
        parent_id=data.get("parent_id"),
        progress=data.get("progress"),
        outputs=outputs_from_data(data.get("outputs")),
        actions=actions_from_data(data.get("actions")),
        error=error_from_data(data.get("error")),
        metadata=data.get("metadata") or {},
        deadline_at=data.get("deadline_at"),
        last_event_at=data.get("last_event_at"),
    )
