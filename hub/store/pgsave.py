"""Writing one planned batch to PostgreSQL in a single statement.

Every write holds the counter-row lock that serializes all replicas, so each round trip
inside it caps the whole cluster's write rate. The rows of a batch (new tasks, changed tasks,
new events, attached orphans, the counters) therefore go as column arrays
(``unnest($1::text[], …)``) in data-modifying CTEs of one statement, instead of one statement
(or one ``executemany`` round per row) each. The parts touch disjoint rows, as one statement's
CTEs must: new and changed tasks are different tasks, new and attached events different events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub.store.plan import Plan
from hub.store.rows import EVENT_COLUMNS, TASK_COLUMNS, event_values, task_state_values, task_values

_TASK_TYPES = "text text text text text int text text text text float8 float8 float8 float8 float8"
_STATE_TYPES = "text text int text text text float8 float8 text"
_EVENT_TYPES = (
    "int8 int8 text text text text text text int text text text text text float8 text text"
)
_ATTACH_TYPES = "text int8 text text int8"


class _Statement:
    """Builds ``WITH … <main>`` while numbering parameters across the parts."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def unnest(self, types: str, rows: Sequence[Sequence[Any]]) -> str:
        """``unnest($n::t[], …)`` over ``rows``, passed one array per column."""
        columns = [list(column) for column in zip(*rows, strict=True)]
        names = []
        for kind, column in zip(types.split(), columns, strict=True):
            self.params.append(column)
            names.append(f"${len(self.params)}::{kind}[]")
        return f"unnest({', '.join(names)})"

    def value(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


def save_statement(plan: Plan, next_id: int, next_seq: int) -> tuple[str, list[Any]]:
    """One SQL statement (and its parameters) that writes ``plan`` and the new counters."""
    st = _Statement()
    st.parts.append(
        f"counters AS (UPDATE hub_counters SET next_id = {st.value(next_id)}, "
        f"next_seq = {st.value(next_seq)} WHERE id = 1)"
    )
    if plan.new_tasks:
        rows = [(*task_values(t), plan.first_polls.get(t.id)) for t in plan.new_tasks.values()]
        st.parts.append(
            f"new_tasks AS (INSERT INTO tasks ({TASK_COLUMNS}, next_poll_at) "
            f"SELECT * FROM {st.unnest(_TASK_TYPES, rows)})"
        )
    if plan.changed_tasks:
        rows = [task_state_values(t) for t in plan.changed_tasks.values()]
        st.parts.append(
            "changed AS (UPDATE tasks SET external_id = u.external_id, status = u.status, "
            "progress = u.progress, outputs = u.outputs, actions = u.actions, error = u.error, "
            "updated_at = u.updated_at, last_event_at = u.last_event_at "
            f"FROM {st.unnest(_STATE_TYPES, rows)} AS u(external_id, status, progress, outputs, "
            "actions, error, updated_at, last_event_at, id) WHERE tasks.id = u.id)"
        )
    if plan.attached:
        rows = [
            (e.task_id, e.seq, e.type.value if e.type else None, e.disposition.value, e.id)
            for e in plan.attached
        ]
        st.parts.append(
            "attached AS (UPDATE events SET task_id = u.task_id, seq = u.seq, type = u.type, "
            f"disposition = u.disposition FROM {st.unnest(_ATTACH_TYPES, rows)} "
            "AS u(task_id, seq, type, disposition, id) WHERE events.id = u.id)"
        )
    main = "SELECT 1"
    if plan.new_events:
        rows = [event_values(e, k) for e, k in plan.new_events]
        main = (
            f"INSERT INTO events ({EVENT_COLUMNS}, dedupe_key) "
            f"SELECT * FROM {st.unnest(_EVENT_TYPES, rows)}"
        )
    return f"WITH {', '.join(st.parts)} {main}", st.params
