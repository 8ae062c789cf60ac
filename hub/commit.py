"""Group commit: concurrent writers share one transaction.

Callers ``await submit(op)``; one background task takes everything queued since the last
commit (up to ``max_batch``), writes it as one batch and resolves each caller with its own
result. Under load a commit carries hundreds of operations, so throughput is not bounded by
one fsync per webhook; with a single caller the batch is just that one operation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from hub.errors import HubError, StoreUnavailable
from hub.store.base import WriteOp, WriteResult

logger = logging.getLogger("hub.commit")

WriteBatch = Callable[[Sequence[WriteOp]], Awaitable[list[WriteResult]]]
AfterCommit = Callable[[list[WriteResult]], Awaitable[None]]
#: Told of every batch written: its size and how long the write took, in seconds.
OnBatch = Callable[[int, float], None]


class GroupCommitter:
    """Batches :class:`~hub.store.base.WriteOp` s into shared transactions."""

    def __init__(
        self,
        write: WriteBatch,
        after_commit: AfterCommit,
        *,
        max_batch: int,
        ping: Callable[[], Awaitable[None]] | None = None,
        on_batch: OnBatch | None = None,
    ) -> None:
        self._write = write
        self._on_batch = on_batch
        self._ping = ping
        self._after_commit = after_commit
        self._max_batch = max_batch
        self._queue: list[tuple[WriteOp, asyncio.Future[WriteResult]]] = []
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the committing task."""
        self._runner = asyncio.create_task(self._run(), name="hub-group-commit")

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._runner is not None:
            await self._runner
            self._runner = None

    async def submit(self, op: WriteOp) -> WriteResult:
        """Queue ``op`` and wait until the batch that carries it is committed."""
        if self._closing or self._runner is None:
            raise StoreUnavailable("the hub is not accepting writes (starting or stopping)")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        self._wake.set()
        result = await future
        if result.error is not None:
            raise result.error
        return result

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._commit(batch)
            if self._closing:
                return

    async def _commit(self, batch: list[tuple[WriteOp, asyncio.Future[WriteResult]]]) -> None:
        error = await self._try(batch)
        if error is None:
            return
        if len(batch) > 1 and await self._store_answers():
            # The store is up, so one operation spoiled the shared transaction (say, text the
            # database cannot encode): commit the others on their own rather than fail them all.
            for one in batch:
                await self._commit([one])
            return
        _fail(batch, error)

    async def _try(
        self, batch: list[tuple[WriteOp, asyncio.Future[WriteResult]]]
    ) -> HubError | None:
        """Write ``batch`` and resolve its callers; the error instead when the write failed."""
        started = time.perf_counter()
        try:
            results = await self._write([op for op, _ in batch])
        except HubError as exc:
            return exc
        except Exception as exc:  # an unexpected store failure must not kill the committer
            logger.exception("write batch failed")
            return StoreUnavailable(f"write failed: {type(exc).__name__}")
        if self._on_batch is not None:
            self._on_batch(len(batch), time.perf_counter() - started)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        try:
            await self._after_commit(results)
        except Exception:  # fan-out trouble never un-acknowledges a committed write
            logger.exception("after-commit hook failed")
        return None

    async def _store_answers(self) -> bool:
        if self._ping is None:
            return False
        try:
            await self._ping()
        except Exception:
            return False
        return True


def _fail(batch: list[tuple[WriteOp, asyncio.Future[WriteResult]]], exc: HubError) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
