"""The shared store: PostgreSQL through an asyncpg pool, for several hub replicas.

Writes from every replica are serialized by a row lock on the one-row ``hub_counters`` table,
taken first in each write transaction (``SELECT … FOR UPDATE``); it also hands out event ids
and ``seq``. So commit order is ``seq`` order and ``seq`` has no holes, as with SQLite's single
writer, and the batch planner (:mod:`hub.store.plan`) decides exactly as it does there. Reads
take no lock. Poll leases use ``FOR UPDATE SKIP LOCKED`` so replicas never claim the same task.

Any connection failure becomes :class:`~hub.errors.StoreUnavailable` (503): while PostgreSQL
restarts, webhooks get 503 (providers retry) and ``/readyz`` fails; the pool reconnects on
its own afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from hub.errors import StoreUnavailable
from hub.models import Event, Status, Task
from hub.store.base import Ingest, PollClaim, PollRelease, Store, TaskFilter, WriteOp, WriteResult
from hub.store.pgconn import CONNECTION_ERRORS, DATABASE_ERRORS, asyncpg, migrate, split_url
from hub.store.pgsave import save_statement
from hub.store.plan import (
    Planner,
    Snapshot,
    orphan_scope,
    wanted_externals,
    wanted_task_ids,
)
from hub.store.rows import (
    EVENT_COLUMNS,
    TASK_COLUMNS,
    event_from_row,
    task_from_row,
)

logger = logging.getLogger("hub.store.postgres")


_TERMINAL = [s.value for s in Status if s.terminal]
_PAIRS = "unnest($1::text[], $2::text[]) AS wanted(provider, external_id)"

#: Seconds to wait for a pooled connection, and for one statement.
ACQUIRE_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0
#: How long :meth:`PostgresStore.start` keeps retrying a database that is not up yet.
START_TIMEOUT = 30.0


class PostgresStore(Store):
    """Tasks and events in PostgreSQL, shared by any number of hub processes.

    ``url`` is a ``postgresql://`` URL; ``?search_path=name`` (or libpq's
    ``?options=-csearch_path%3Dname``) puts the tables in another schema, created if missing.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.dsn, self.server_settings, _ = split_url(url)
        self.min_size = min_size
        self.max_size = max_size
        self.start_timeout = start_timeout
        self._pool: Any = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        delay = 0.2
        while True:
            try:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    server_settings=self.server_settings,
                    command_timeout=COMMAND_TIMEOUT,
                    timeout=5,
                    reset=_keep_session,
                )
                break
            except CONNECTION_ERRORS as exc:
                # Replicas often start before the database (compose, k8s): wait for it a while.
                if loop.time() + delay > deadline:
                    raise StoreUnavailable(f"PostgreSQL not reachable: {exc}") from exc
                logger.warning("PostgreSQL not reachable yet (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                await migrate(conn)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 10)
            except DATABASE_ERRORS:
                pool.terminate()

    async def ping(self) -> None:
        await self._fetch("SELECT 1", retry=False)

    # -- writing -------------------------------------------------------------------------

    async def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        try:
            async with self._acquire() as conn, conn.transaction():
                counters = await conn.fetchrow(
                    "SELECT next_id, next_seq FROM hub_counters WHERE id = 1 FOR UPDATE"
                )
                planner = Planner(
                    await _snapshot(conn, ops), counters["next_id"], counters["next_seq"]
                )
                plan = planner.run(ops)
                sql, params = save_statement(plan, planner.next_id, planner.next_seq)
                await conn.execute(sql, *params)
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"PostgreSQL write failed: {_describe(exc)}") from exc
        return plan.results

    async def prune_log(self, before: float) -> int:
        status = await self._execute(
            "DELETE FROM events WHERE received_at < $1 AND task_id IN "
            "(SELECT id FROM tasks WHERE status = ANY($2::text[]))",
            before,
            _TERMINAL,
        )
        return int(status.split()[-1])

    async def claim_polls(
        self, owner: str, now: float, lease_s: float, limit: int, *, due_by: float | None = None
    ) -> list[PollClaim]:
        # SKIP LOCKED: replicas claiming at the same moment each take different rows instead
        # of queueing behind one another; the lease then keeps them apart until released.
        rows = await self._fetch(
            f"UPDATE tasks SET lease_owner = $1, lease_until = $2 WHERE id IN ("
            "SELECT id FROM tasks WHERE status <> ALL($3::text[]) "
            "AND (next_poll_at <= $6 OR deadline_at <= $6) "
            "AND (lease_until IS NULL OR lease_until < $4) "
            "ORDER BY COALESCE(next_poll_at, deadline_at) LIMIT $5 FOR UPDATE SKIP LOCKED) "
            f"RETURNING {TASK_COLUMNS}, poll_attempts, COALESCE(next_poll_at, deadline_at) AS due",
            owner,
            now + lease_s,
            _TERMINAL,
            now,
            limit,
            now if due_by is None else due_by,
            retry=False,
        )
        rows.sort(key=lambda row: row["due"])
        return [PollClaim(task_from_row(row), int(row["poll_attempts"])) for row in rows]

    async def release_polls(self, owner: str, releases: Sequence[PollRelease]) -> None:
        if not releases:
            return
        # One statement over arrays: one round trip and one commit whatever the count.
        await self._execute(
            "UPDATE tasks SET lease_owner = NULL, lease_until = NULL, "
            "next_poll_at = r.next_poll_at, poll_attempts = r.attempts "
            "FROM unnest($1::text[], $2::float8[], $3::int[]) AS r(id, next_poll_at, attempts) "
            "WHERE tasks.id = r.id AND tasks.lease_owner = $4",
            [r.task_id for r in releases],
            [r.next_poll_at for r in releases],
            [r.attempts for r in releases],
            owner,
        )

    # -- reading -------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> Task | None:
        rows = await self._fetch(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1", task_id)
        return task_from_row(rows[0]) if rows else None

    async def list_tasks(self, filters: TaskFilter) -> list[Task]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("provider", filters.provider),
            ("status", filters.status.value if filters.status else None),
            ("external_id", filters.external_id),
            ("parent_id", filters.parent_id),
        ):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        if filters.before:
            params.append(filters.before)
            clauses.append(f"id < ${len(params)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params.append(filters.limit)
        rows = await self._fetch(
            f"SELECT {TASK_COLUMNS} FROM tasks {where} ORDER BY id DESC LIMIT ${len(params)}",
            *params,
        )
        return [task_from_row(r) for r in rows]

    async def task_events(self, task_id: str) -> list[Event]:
        rows = await self._fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE task_id = $1 ORDER BY id", task_id
        )
        return [event_from_row(r) for r in rows]

    async def read_log(self, after_seq: int, limit: int = 1000) -> list[Event]:
        rows = await self._fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            after_seq,
            limit,
        )
        return [event_from_row(r) for r in rows]

    async def last_seq(self) -> int:
        # The counter, not MAX(seq): pruning the newest events must not make seq go back.
        rows = await self._fetch("SELECT next_seq - 1 AS s FROM hub_counters WHERE id = 1")
        return int(rows[0]["s"])

    async def first_seq(self) -> int:
        rows = await self._fetch("SELECT MIN(seq) AS s FROM events")
        if rows[0]["s"] is None:
            return await self.last_seq() + 1
        return int(rows[0]["s"])

    # -- helpers -------------------------------------------------------------------------

    def _acquire(self) -> Any:
        if self._pool is None:
            raise StoreUnavailable("the store is not started (did you forget `async with hub`?)")
        return self._pool.acquire(timeout=ACQUIRE_TIMEOUT)

    async def _fetch(self, sql: str, *params: Any, retry: bool = True) -> list[Any]:
        """Run a query; a read is tried twice, since after a restart a pooled connection may
        be dead while a fresh one would work."""
        attempts = 2 if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                async with self._acquire() as conn:
                    return list(await conn.fetch(sql, *params))
            except CONNECTION_ERRORS as exc:
                if attempt == attempts:
                    raise StoreUnavailable(f"PostgreSQL unavailable: {_describe(exc)}") from exc
            except DATABASE_ERRORS as exc:
                raise StoreUnavailable(f"PostgreSQL query failed: {_describe(exc)}") from exc
        raise AssertionError("unreachable")

    async def _execute(self, sql: str, *params: Any) -> str:
        try:
            async with self._acquire() as conn:
                return str(await conn.execute(sql, *params))
        except DATABASE_ERRORS as exc:
            raise StoreUnavailable(f"PostgreSQL write failed: {_describe(exc)}") from exc


async def _snapshot(conn: Any, ops: Sequence[WriteOp]) -> Snapshot:
    """Load what the batch touches, as SQLiteStore._plan does, with arrays instead of IN lists."""
    snapshot = Snapshot()
    ids = list(wanted_task_ids(ops))
    if ids:
        for row in await conn.fetch(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ANY($1::text[])", ids
        ):
            snapshot.add_task(task_from_row(row))
    pairs = list(wanted_externals(ops, snapshot))
    if pairs:
        providers, externals = [p for p, _ in pairs], [e for _, e in pairs]
        for row in await conn.fetch(
            f"SELECT {_qualified('t', TASK_COLUMNS)} FROM tasks t JOIN {_PAIRS} "
            "ON t.provider = wanted.provider AND t.external_id = wanted.external_id",
            providers,
            externals,
        ):
            snapshot.add_task(task_from_row(row))
        for row in await conn.fetch(
            f"SELECT {_qualified('e', EVENT_COLUMNS)}, e.dedupe_key FROM events e JOIN {_PAIRS} "
            "ON e.provider = wanted.provider AND e.provider_task_id = wanted.external_id "
            "WHERE e.task_id IS NULL ORDER BY e.id",
            providers,
            externals,
        ):
            pair = (row["provider"], row["provider_task_id"])
            snapshot.seen.add((orphan_scope(*pair), row["dedupe_key"]))
            if row["disposition"] == "orphan":
                snapshot.orphans.setdefault(pair, []).append(
                    (event_from_row(row), row["dedupe_key"])
                )
    keys = {op.dedupe_key() for op in ops if isinstance(op, Ingest)}
    if keys and snapshot.tasks:
        for row in await conn.fetch(
            "SELECT task_id, dedupe_key FROM events "
            "WHERE task_id = ANY($1::text[]) AND dedupe_key = ANY($2::text[])",
            list(snapshot.tasks),
            list(keys),
        ):
            snapshot.seen.add((row["task_id"], row["dedupe_key"]))
    return snapshot


async def _keep_session(conn: Any) -> None:
    """Pool release without asyncpg's reset query, one round trip less per use: the store
    leaves no session state behind (its advisory lock is transaction-scoped, it never LISTENs,
    and a failed transaction is rolled back by the transaction block)."""


def _qualified(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
