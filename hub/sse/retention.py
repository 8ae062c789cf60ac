"""Log retention: finished tasks' events older than ``HUB_LOG_RETENTION_S`` are pruned.

The fan-out log is also the replay source, so retention decides how far back a stream can
resume: a ``Last-Event-ID`` older than what is kept gets a ``reset`` event (see
:mod:`hub.sse.catchup`). Every replica may prune; deleting twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time

from hub.aio import cancel_and_wait
from hub.store.base import Store

logger = logging.getLogger("hub.sse")


class Pruner:
    """Prunes the log periodically; ``retention_s <= 0`` keeps everything."""

    def __init__(self, store: Store, retention_s: float) -> None:
        self._store = store
        self.retention_s = retention_s
        # Often enough that the log never holds much more than the retention, rarely enough
        # to cost nothing: a quarter of the retention, between 1 s and 5 min.
        self.interval_s = min(max(retention_s / 4, 1.0), 300.0)
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start pruning in the background (a no-op when retention is off)."""
        if self.retention_s > 0 and self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="hub-log-retention")

    async def close(self) -> None:
        """Stop pruning."""
        await cancel_and_wait(self._runner)
        self._runner = None

    async def prune(self) -> int:
        """Prune once now; returns how many events went."""
        return await self._store.prune_log(time.time() - self.retention_s)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                pruned = await self.prune()
            except Exception:  # the store may be down for a while; try again next round
                logger.warning("pruning the event log failed", exc_info=True)
                continue
            if pruned:
                logger.info("pruned %d events older than %gs", pruned, self.retention_s)
