"""The default store: one SQLite file in WAL mode, written by a single connection.

All writes arrive as batches from the group committer, so one ``BEGIN IMMEDIATE … COMMIT``
makes a whole batch durable with one fsync. The writing connection is a
:class:`~hub.store.sqlite_writer.SQLiteWriter` (statements on the event loop, the fsync on a
thread); reads use an aiosqlite connection, and WAL lets them run while a write is in progress.

Durability (``synchronous``): ``FULL`` (the default) fsyncs the WAL at every commit, so an
acknowledged webhook survives a process kill *and* a power loss or OS crash. ``NORMAL`` survives
a process kill (the WAL is in the OS page cache) but the last commits may be lost on power loss.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from hub.errors import StoreUnavailable
from hub.models import Event, Status, Task
from hub.store.base import (
    Ingest,
    PollClaim,
    PollRelease,
    Store,
    TaskFilter,
    WriteOp,
    WriteResult,
)
from hub.store.migrations import migrations
from hub.store.plan import (
    Plan,
    Planner,
    Snapshot,
    orphan_scope,
    seen_candidates,
    wanted_externals,
    wanted_task_ids,
)
from hub.store.rows import (
    EVENT_COLUMNS,
    TASK_COLUMNS,
    event_from_row,
    event_values,
    task_from_row,
    task_state_values,
    task_values,
)
from hub.store.sqlite_writer import SQLiteWriter

_UPDATE_TASK = (
    "UPDATE tasks SET external_id = ?, status = ?, progress = ?, outputs = ?, actions = ?, "
    "error = ?, updated_at = ?, last_event_at = ? WHERE id = ?"
)
# A progress report rewrites three columns; the full UPDATE would also re-insert the task's
# entries in the status and provider-id indexes: 13 us a row against 6 us, measured.
_UPDATE_PROGRESS = "UPDATE tasks SET progress = ?, updated_at = ?, last_event_at = ? WHERE id = ?"
_INSERT_TASK = f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES ({', '.join('?' * 14)})"
_INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}, dedupe_key) VALUES ({', '.join('?' * 17)})"
_ATTACH_EVENT = "UPDATE events SET task_id = ?, seq = ?, type = ?, disposition = ? WHERE id = ?"
TASK_CACHE_SIZE = 50_000
# A batch whose raw bodies add up to more than this is written off the event loop.
INLINE_BATCH_BYTES = 4 * 1024 * 1024
_TERMINAL = tuple(s.value for s in Status if s.terminal)
_NOT_TERMINAL = f"status NOT IN ({', '.join(repr(v) for v in _TERMINAL)})"


class SQLiteStore(Store):
    """Tasks and events in one SQLite file."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._writer = SQLiteWriter(self.path, synchronous=self.synchronous)
        self._reader: aiosqlite.Connection | None = None
        self._next_id = 1
        self._next_seq = 1
        self._pending_counters = (1, 1)
        # Set when a batch ends without a known outcome (an error, or a cancellation while its
        # COMMIT ran): the next batch reads the counters back from the file first.
        self._counters_unknown = True
        # This connection is the file's only writer, so the state it last committed is the
        # truth: batches read recent tasks from here instead of re-reading and re-decoding
        # their rows (a quarter of a batch's cost). Any failed batch empties it.
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._pending_tasks: list[Task] = []

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.open()
        await self._writer.run(_migrate)
        self._reader = await _connect(self.path)
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute("PRAGMA busy_timeout=5000")
        await self._reader.execute("PRAGMA query_only=1")

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await self._writer.close()

    async def ping(self) -> None:
        await self._read_one("SELECT 1", ())

    async def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        try:
            if sum(_raw_size(op) for op in ops) > INLINE_BATCH_BYTES:
                # Large bodies: writing them would hold the event loop for a long time, so
                # this batch runs on the I/O thread (few rows, so few GIL hand-backs).
                plan = await self._writer.run(functools.partial(self._plan_and_save, ops))
            else:
                async with self._writer.transaction() as db:
                    plan = self._plan_and_save(ops, db)
        except BaseException:
            self._tasks.clear()  # a failed batch: forget rather than reason about it
            self._counters_unknown = True
            raise
        self._next_id, self._next_seq = self._pending_counters
        for task in self._pending_tasks:
            self._remember(task)
        return plan.results

    def _plan_and_save(self, ops: Sequence[WriteOp], db: sqlite3.Connection) -> Plan:
        if self._counters_unknown:
            self._load_counters(db)
        plan = self._plan(db, ops)
        _save(db, plan)
        return plan

    def _remember(self, task: Task) -> None:
        # Copies, so neither the planner's next batch nor a caller holding a result's task
        # can change what the cache says.
        self._tasks[task.id] = task.clone()
        self._tasks.move_to_end(task.id)
        if len(self._tasks) > TASK_CACHE_SIZE:
            self._tasks.popitem(last=False)

    async def first_seq(self) -> int:
        row = await self._read_one("SELECT MIN(seq) AS s FROM events", ())
        if row is None or row["s"] is None:
            return await self.last_seq() + 1
        return int(row["s"])

    async def prune_log(self, before: float) -> int:
        # Maybe many rows: on the writer's thread, so the event loop goes on meanwhile.
        def prune(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "DELETE FROM events WHERE received_at < ? AND task_id IN "
                f"(SELECT id FROM tasks WHERE NOT {_NOT_TERMINAL})",
                (before,),
            )
            return int(cursor.rowcount)

        return await self._writer.run(prune)

    async def claim_polls(
        self, owner: str, now: float, lease_s: float, limit: int, *, due_by: float | None = None
    ) -> list[PollClaim]:
        due = now if due_by is None else due_by
        async with self._transaction() as db:
            rows = db.execute(
                f"SELECT {TASK_COLUMNS}, poll_attempts FROM tasks "
                f"WHERE {_NOT_TERMINAL} "
                "AND (next_poll_at <= ? OR deadline_at <= ?) "
                "AND (lease_until IS NULL OR lease_until < ?) "
                "ORDER BY COALESCE(next_poll_at, deadline_at) LIMIT ?",
                (due, due, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE id = ?",
                [(owner, now + lease_s, row["id"]) for row in rows],
            )
        return [PollClaim(task_from_row(row), int(row["poll_attempts"])) for row in rows]

    async def release_polls(self, owner: str, releases: Sequence[PollRelease]) -> None:
        if not releases:
            return
        async with self._transaction() as db:
            db.executemany(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL, next_poll_at = ?, "
                "poll_attempts = ? WHERE id = ? AND lease_owner = ?",
                [(r.next_poll_at, r.attempts, r.task_id, owner) for r in releases],
            )

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[sqlite3.Connection]:
        """A write transaction (see :class:`SQLiteWriter`); the task cache is emptied if it fails.

        SQLite errors become :class:`StoreUnavailable` (a 503 for HTTP callers), never a 500.
        """
        try:
            async with self._writer.transaction() as db:
                yield db
        except BaseException:
            self._tasks.clear()  # a failed batch: forget rather than reason about it
            raise

    async def get_task(self, task_id: str) -> Task | None:
        row = await self._read_one(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        return task_from_row(row) if row else None

    async def list_tasks(self, filters: TaskFilter) -> list[Task]:
        clauses, params = [], []
        for column, value in (
            ("provider", filters.provider),
            ("status", filters.status.value if filters.status else None),
            ("external_id", filters.external_id),
            ("parent_id", filters.parent_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if filters.before:
            clauses.append("id < ?")
            params.append(filters.before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._read(
            f"SELECT {TASK_COLUMNS} FROM tasks {where} ORDER BY id DESC LIMIT ?",
            (*params, filters.limit),
        )
        return [task_from_row(r) for r in rows]

    async def task_events(self, task_id: str) -> list[Event]:
        rows = await self._read(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE task_id = ? ORDER BY id", (task_id,)
        )
        return [event_from_row(r) for r in rows]

    async def read_log(self, after_seq: int, limit: int = 1000) -> list[Event]:
        rows = await self._read(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [event_from_row(r) for r in rows]

    async def last_seq(self) -> int:
        row = await self._read_one("SELECT COALESCE(MAX(seq), 0) AS s FROM events", ())
        return int(row["s"]) if row else 0

    # -- writing -------------------------------------------------------------------------

    def _plan(self, db: sqlite3.Connection, ops: Sequence[WriteOp]) -> Plan:
        snapshot = Snapshot()
        missing = []
        for task_id in wanted_task_ids(ops):
            cached = self._tasks.get(task_id)
            if cached is None:
                missing.append(task_id)
            else:
                snapshot.add_task(cached.clone())
        for row in _select_in(db, f"SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ", missing):
            snapshot.add_task(task_from_row(row))
        pairs = list(wanted_externals(ops, snapshot))
        if pairs:
            values = ", ".join("(?, ?)" for _ in pairs)
            flat = [part for pair in pairs for part in pair]
            cursor = db.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks "
                f"WHERE (provider, external_id) IN (VALUES {values})",
                flat,
            )
            for row in cursor.fetchall():
                if row["id"] not in snapshot.tasks:  # the cached or batch copy is current
                    snapshot.add_task(task_from_row(row))
            cursor = db.execute(
                f"SELECT {EVENT_COLUMNS}, dedupe_key FROM events WHERE task_id IS NULL "
                f"AND (provider, provider_task_id) IN (VALUES {values}) ORDER BY id",
                flat,
            )
            for row in cursor.fetchall():
                pair = (row["provider"], row["provider_task_id"])
                snapshot.seen.add((orphan_scope(*pair), row["dedupe_key"]))
                if row["disposition"] == "orphan":
                    snapshot.orphans.setdefault(pair, []).append(
                        (event_from_row(row), row["dedupe_key"])
                    )
        candidates = [c for c in seen_candidates(ops, snapshot) if c not in snapshot.seen]
        for start in range(0, len(candidates), 400):  # stay under SQLite's variable limit
            chunk = candidates[start : start + 400]
            cursor = db.execute(
                "SELECT task_id, dedupe_key FROM events WHERE "
                + " OR ".join("(task_id = ? AND dedupe_key = ?)" for _ in chunk),
                [part for pair in chunk for part in pair],
            )
            snapshot.seen.update((row[0], row[1]) for row in cursor.fetchall())
        planner = Planner(snapshot, self._next_id, self._next_seq)
        plan = planner.run(ops)
        self._pending_counters = (planner.next_id, planner.next_seq)
        self._pending_tasks = list(snapshot.tasks.values())
        return plan

    # -- helpers -------------------------------------------------------------------------

    def _load_counters(self, db: sqlite3.Connection) -> None:
        row = db.execute(
            "SELECT COALESCE(MAX(id), 0) AS i, COALESCE(MAX(seq), 0) AS s FROM events"
        ).fetchone()
        self._next_id, self._next_seq = int(row["i"]) + 1, int(row["s"]) + 1
        self._counters_unknown = False

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        db = self._db(self._reader)
        try:
            # One call, not execute() then fetchall(): between those two thread hops another
            # read could start, the first statement would still hold the read transaction open,
            # and reads that overlap like that keep seeing a snapshot from before later commits
            # (a replay or a wait would miss an event the dispatcher already delivered).
            return list(await db.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite read failed: {exc}") from exc

    async def _read_one(self, sql: str, params: Sequence[Any]) -> Any:
        rows = await self._read(sql, params)
        return rows[0] if rows else None

    @staticmethod
    def _db(connection: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if connection is None:
            raise StoreUnavailable("the store is not started (did you forget `async with hub`?)")
        return connection


def _save(db: sqlite3.Connection, plan: Plan) -> None:
    if plan.new_tasks:
        db.executemany(_INSERT_TASK, [task_values(t) for t in plan.new_tasks.values()])
    if plan.changed_tasks:
        progress_rows, state_rows = [], []
        for task in plan.changed_tasks.values():
            if task.id in plan.progress_only:
                progress_rows.append((task.progress, task.updated_at, task.last_event_at, task.id))
            else:
                state_rows.append(task_state_values(task))
        if progress_rows:
            db.executemany(_UPDATE_PROGRESS, progress_rows)
        if state_rows:
            db.executemany(_UPDATE_TASK, state_rows)
    if plan.new_events:
        db.executemany(_INSERT_EVENT, [event_values(e, k) for e, k in plan.new_events])
    if plan.attached:
        db.executemany(
            _ATTACH_EVENT,
            [
                (e.task_id, e.seq, e.type.value if e.type else None, e.disposition.value, e.id)
                for e in plan.attached
            ],
        )
    if plan.first_polls:
        db.executemany(
            "UPDATE tasks SET next_poll_at = ? WHERE id = ?",
            [(when, task_id) for task_id, when in plan.first_polls.items()],
        )


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the migrations this file lacks (in the writer's start-up transaction)."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)")
    done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
    for version, sql in migrations("sqlite"):
        if version in done:
            continue
        for statement in _statements(sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?)", (version,))


def _raw_size(op: WriteOp) -> int:
    return len(op.raw) if isinstance(op, Ingest) and isinstance(op.raw, str) else 0


def _select_in(db: sqlite3.Connection, prefix: str, values: Iterable[str]) -> list[Any]:
    items = list(values)
    if not items:
        return []
    return db.execute(prefix + f"({', '.join('?' * len(items))})", items).fetchall()


async def _connect(path: Path, **kwargs: Any) -> aiosqlite.Connection:
    """An aiosqlite connection whose worker thread cannot keep the process alive.

    aiosqlite's thread is not a daemon, so a store left open (a crashed caller, a cancelled
    test) would hang interpreter exit forever. Nothing is at risk in letting it die: a commit
    in progress is atomic in SQLite, and nothing uncommitted was ever acknowledged.
    """
    connection = aiosqlite.connect(path, **kwargs)
    worker = getattr(connection, "_thread", connection)  # a Thread subclass before 0.21
    if isinstance(worker, threading.Thread) and not worker.is_alive():
        worker.daemon = True
    return await connection


def _statements(sql: str) -> list[str]:
    return [part.strip() for part in sql.split(";") if part.strip()]
