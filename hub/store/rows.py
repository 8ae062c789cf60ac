"""Converting between model objects and database rows, for every SQL store.

JSON-valued columns (outputs, actions, error, metadata, raw) are stored as JSON text so the
same rows work in SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

from hub.models import (
    Disposition,
    Event,
    EventType,
    Source,
    Status,
    Task,
    actions_from_data,
    error_dict,
    error_from_data,
    outputs_from_data,
)

TASK_COLUMNS = (
    "id, provider, external_id, parent_id, status, progress, outputs, actions, error, "
    "metadata, created_at, updated_at, deadline_at, last_event_at"
)
EVENT_COLUMNS = (
    "id, seq, task_id, provider, provider_task_id, type, status, provider_status, progress, "
    "outputs, actions, error, disposition, source, received_at, raw"
)


def dumps(value: Any) -> str | None:
    """Compact JSON, or None for empty values."""
    if value is None or value == [] or value == {}:
        return None
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(value: Any) -> Any:
    """Parse a JSON column (None stays None)."""
    return json.loads(value) if value else None


def task_values(task: Task) -> tuple[Any, ...]:
    """A task as values in :data:`TASK_COLUMNS` order."""
    return (
        task.id,
        task.provider,
        task.external_id,
        task.parent_id,
        task.status._value_,
        task.progress,
        dumps([o.as_dict() for o in task.outputs]),
        dumps([a.as_dict() for a in task.actions]),
        dumps(error_dict(task.error)),
        dumps(task.metadata),
        task.created_at,
        task.updated_at,
        task.deadline_at,
        task.last_event_at,
    )


def task_state_values(task: Task) -> tuple[Any, ...]:
    """The mutable part of a task, then its id: the parameters of an UPDATE."""
    return (
        task.external_id,
        task.status._value_,
        task.progress,
        dumps([o.as_dict() for o in task.outputs]),
        dumps([a.as_dict() for a in task.actions]),
        dumps(error_dict(task.error)),
        task.updated_at,
        task.last_event_at,
        task.id,
    )


def event_values(event: Event, key: str) -> tuple[Any, ...]:
    """An event as values in :data:`EVENT_COLUMNS` order, then its dedupe key.

    Built field by field: this runs once per webhook inside the write batch. Enum members go
    in as their plain ``_value_`` string: sqlite3 binds only exact ``str`` directly and sends a
    subclass through its adapter look-up, which cost ~1 us per member on Python 3.11 (more than
    the rest of the binding), and ``.value`` is a Python-level property ten times slower than
    ``_value_``.
    """
    return (
        event.id,
        event.seq,
        event.task_id,
        event.provider,
        event.provider_task_id,
        event.type._value_ if event.type else None,
        event.status._value_ if event.status else None,
        event.provider_status,
        event.progress,
        dumps([o.as_dict() for o in event.outputs]) if event.outputs else None,
        dumps([a.as_dict() for a in event.actions]) if event.actions else None,
        dumps(error_dict(event.error)) if event.error else None,
        event.disposition._value_,
        event.source._value_,
        event.received_at,
        # Webhook bodies arrive as JSON text: stored as received, not re-encoded.
        event.raw if isinstance(event.raw, str) else dumps(event.raw),
        key,
    )


def task_from_row(row: Any) -> Task:
    """A task from a row (any mapping by column name) selected with :data:`TASK_COLUMNS`."""
    return Task(
        id=row["id"],
        provider=row["provider"],
        status=Status(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        external_id=row["external_id"],
        parent_id=row["parent_id"],
        progress=row["progress"],
        outputs=outputs_from_data(loads(row["outputs"])),
        actions=actions_from_data(loads(row["actions"])),
        error=error_from_data(loads(row["error"])),
        metadata=loads(row["metadata"]) or {},
        deadline_at=row["deadline_at"],
        last_event_at=row["last_event_at"],
    )


def event_from_row(row: Any) -> Event:
    """An event from a row selected with :data:`EVENT_COLUMNS`."""
    return Event(
        id=row["id"],
        seq=row["seq"],
        task_id=row["task_id"],
        provider=row["provider"],
        type=EventType(row["type"]) if row["type"] else None,
        status=Status(row["status"]) if row["status"] else None,
        disposition=Disposition(row["disposition"]),
        source=Source(row["source"]),
        received_at=row["received_at"],
        provider_task_id=row["provider_task_id"],
        provider_status=row["provider_status"],
        progress=row["progress"],
        outputs=outputs_from_data(loads(row["outputs"])),
        actions=actions_from_data(loads(row["actions"])),
        error=error_from_data(loads(row["error"])),
        raw=loads(row["raw"]),
    )
