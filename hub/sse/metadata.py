"""Task metadata for tag filters (``channel=…``), read once per task per process.

Events do not carry their task's metadata, and a task's metadata never changes after it is
registered, so a bounded cache answers nearly every look-up; a miss costs one store read,
shared by every stream that asks for the same task at the same time.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from hub.store.base import Store

#: Returned by :meth:`MetadataCache.get` when the task is not cached.
UNKNOWN: Any = object()


class MetadataCache:
    """A least-recently-used map from task id to metadata."""

    def __init__(self, store: Store, *, size: int = 10_000) -> None:
        self._store = store
        self._size = size
        self._cache: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._loading: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

    def get(self, task_id: str | None) -> Any:
        """The cached metadata (None for no such task), or :data:`UNKNOWN`."""
        if task_id is None:
            return None
        metadata = self._cache.get(task_id, UNKNOWN)
        if metadata is not UNKNOWN:
            self._cache.move_to_end(task_id)
        return metadata

    def remember(self, task_id: str, metadata: dict[str, Any] | None) -> None:
        """Cache ``metadata`` of ``task_id``."""
        self._cache[task_id] = metadata
        self._cache.move_to_end(task_id)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    async def fetch(self, task_id: str | None) -> dict[str, Any] | None:
        """The metadata, from the cache or the store."""
        cached = self.get(task_id)
        if cached is not UNKNOWN:
            return cached  # type: ignore[no-any-return]
        assert task_id is not None
        loading = self._loading.get(task_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(task_id))
            self._loading[task_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(task_id, None))
        # shield: one stream giving up must not cancel the read others wait for.
        return await asyncio.shield(loading)

    async def _load(self, task_id: str) -> dict[str, Any] | None:
        task = await self._store.get_task(task_id)
        metadata = task.metadata if task is not None else None
        self.remember(task_id, metadata)
        return metadata
