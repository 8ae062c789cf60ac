"""The per-task state machine: what one update does to a task.

Pure functions, shared by every store, so SQLite and PostgreSQL decide alike:

* terminal statuses are final: a later update is stored as ``stale`` and changes nothing;
* the lifecycle only moves forward (queued < running < terminal) and progress never goes back;
* an update that repeats one already stored (same delivery id, or the same normalized
  content) is a ``duplicate``;
* an update that tells nothing new is ``stale``; only ``applied`` updates are fanned out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from hub.models import Disposition, EventType, Status, Task, Update


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one update against one task."""

    disposition: Disposition
    event_type: EventType | None = None


def dedupe_key(update: Update) -> str:
    """A key equal for two deliveries of the same report.

    The provider's own delivery id wins where it sends one; otherwise the normalized content
    (never the raw body, whose key order or timestamps may differ between a webhook and a poll).
    """
    if update.delivery_id:
        return "d:" + update.delivery_id
    content = [
        update.status.value if update.status else update.provider_status,
        update.progress,
        [o.as_dict() for o in update.outputs],
        update.error.code if update.error else None,
        update.error.message if update.error else None,
    ]
    digest = hashlib.blake2b(
        json.dumps(content, separators=(",", ":"), sort_keys=True).encode(), digest_size=12
    )
    return "c:" + digest.hexdigest()


def decide(task: Task, update: Update, *, seen: bool) -> Decision:
    """Decide what ``update`` does to ``task``; ``seen`` means its dedupe key is stored."""
    if seen:
        return Decision(Disposition.DUPLICATE)
    status = update.status
    if status is None:
        return Decision(Disposition.UNRECOGNISED)
    if task.status.terminal or status.rank < task.status.rank:
        return Decision(Disposition.STALE)
    if status.terminal:
        return Decision(Disposition.APPLIED, EventType.for_status(status))
    moved = status != task.status
    advanced = update.progress is not None and update.progress > (task.progress or 0)
    new_outputs = bool(update.outputs) and list(update.outputs) != task.outputs
    if moved or advanced or new_outputs:
        return Decision(Disposition.APPLIED, EventType.for_status(status))
    return Decision(Disposition.STALE)


def apply(task: Task, update: Update, now: float) -> None:
    """Move ``task`` to the state ``update`` reports; call only for an applied decision."""
    if update.status is None:  # decide() never applies an unrecognised update
        return
    task.status = update.status
    if update.progress is not None:
        task.progress = max(task.progress or 0, min(update.progress, 100))
    if update.status is Status.SUCCEEDED:
        task.progress = 100
    if update.outputs:
        task.outputs = list(update.outputs)
    if update.actions:
        task.actions = list(update.actions)
    if update.error is not None:
        task.error = update.error
    task.updated_at = now
    task.last_event_at = now
