"""Which events a stream wants: task ids, providers, event types, statuses, metadata tags.

Values of one filter are alternatives (``status=succeeded,failed``); different filters must all
match. Query parameters may repeat or hold comma-separated values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.http import ApiError
from hub.models import Event, EventType, Status

MAX_VALUES = 100
MAX_LENGTH = 200
#: ``channel=x`` is short for ``meta.channel=x``: the task's ``metadata["channel"]`` is ``x``.
META_PREFIX = "meta."
_STREAM_PARAMS = {"token", "last_event_id", "stay_open"}


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A stream's selection; an empty filter takes every event."""

    task_ids: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    meta: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        """Whether every event matches."""
        return not (self.task_ids or self.providers or self.types or self.statuses or self.meta)

    @property
    def needs_metadata(self) -> bool:
        """Whether matching needs the task's metadata (a tag filter)."""
        return bool(self.meta)

    def matches_event(self, event: Event) -> bool:
        """Everything but the tags."""
        if self.task_ids and event.task_id not in self.task_ids:
            return False
        if self.providers and event.provider not in self.providers:
            return False
        if self.types and (event.type is None or event.type.value not in self.types):
            return False
        return not (
            self.statuses and (event.status is None or event.status.value not in self.statuses)
        )

    def matches_metadata(self, metadata: Mapping[str, Any] | None) -> bool:
        """The tags alone; a task without metadata matches no tag."""
        if not self.meta:
            return True
        if metadata is None:
            return False
        return all(_tag(metadata.get(key)) == value for key, value in self.meta)

    @classmethod
    def from_query(cls, items: Iterable[tuple[str, str]]) -> EventFilter:
        """Parse ``task_id``, ``provider``, ``type``, ``status``, ``channel`` and ``meta.*``.

        Raises :class:`~hub.http.ApiError` (400) for unknown names or values.
        """
        values: dict[str, set[str]] = {}
        for name, raw in items:
            if name in _STREAM_PARAMS:
                continue
            key = "meta.channel" if name == "channel" else name
            if key not in {"task_id", "provider", "type", "status"} and not (
                key.startswith(META_PREFIX) and len(key) > len(META_PREFIX)
            ):
                raise ApiError(400, "bad_request", f"unknown stream filter {name!r}")
            parts = {part.strip() for part in raw.split(",") if part.strip()}
            if not parts or any(len(part) > MAX_LENGTH for part in parts):
                raise ApiError(400, "bad_request", f"'{name}' needs values of 1-200 characters")
            bucket = values.setdefault(key, set())
            bucket |= parts
            if len(bucket) > MAX_VALUES:
                raise ApiError(400, "bad_request", f"at most {MAX_VALUES} values of '{name}'")
        _check(values.get("type", set()), {t.value for t in EventType}, "type")
        _check(values.get("status", set()), {s.value for s in Status}, "status")
        meta = []
        for key, parts in sorted(values.items()):
            if key.startswith(META_PREFIX):
                if len(parts) != 1:
                    raise ApiError(400, "bad_request", f"'{key}' takes one value")
                meta.append((key[len(META_PREFIX) :], next(iter(parts))))
        return cls(
            task_ids=frozenset(values.get("task_id", ())),
            providers=frozenset(values.get("provider", ())),
            types=frozenset(values.get("type", ())),
            statuses=frozenset(values.get("status", ())),
            meta=tuple(meta),
        )


def _check(given: set[str], allowed: set[str], name: str) -> None:
    unknown = given - allowed
    if unknown:
        raise ApiError(
            400,
            "bad_request",
            f"unknown {name} {sorted(unknown)[0]!r}; one of {', '.join(sorted(allowed))}",
        )


def _tag(value: Any) -> str | None:
    # Tags compare as text, so ``meta.shard=3`` matches metadata {"shard": 3} too.
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
