"""In-order, gap-free delivery of the fan-out log to this process's listeners.

Bus messages can arrive late, twice, out of order or not at all (a Redis restart, two
replicas publishing at once). The dispatcher keeps a cursor (the last ``seq`` delivered) and
hands listeners each applied event exactly once, in ``seq`` order: the next expected event is
delivered straight from the bus message; anything else makes it read the missing range from
the store, which is the truth. A periodic check catches up after silent bus losses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from hub.aio import cancel_and_wait
from hub.models import Event
from hub.store.base import Store

logger = logging.getLogger("hub.dispatch")

Listener = Callable[[Event], None]


class Dispatcher:
    """Feeds applied events to listeners in ``seq`` order, repairing gaps from the store."""

    def __init__(self, store: Store, *, catch_up_interval: float = 1.0) -> None:
        self._store = store
        self._interval = catch_up_interval
        self._listeners: list[Listener] = []
        self.cursor = 0
        self._repair = asyncio.Event()
        self._dirty = False
        self._repairing = False
        self._runner: asyncio.Task[None] | None = None

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every applied event from now on."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def start(self) -> None:
        """Start from the end of the log and watch for gaps."""
        self.cursor = await self._store.last_seq()
        self._runner = asyncio.create_task(self._run(), name="hub-dispatch")

    async def close(self) -> None:
        """Stop watching."""
        await cancel_and_wait(self._runner)
        self._runner = None

    def on_bus(self, events: list[Event]) -> None:
        """The bus sink: deliver what is next in line, repair the rest."""
        for event in events:
            seq = event.seq
            if seq is None or seq <= self.cursor:
                continue
            if seq == self.cursor + 1 and not self._repairing:
                self._deliver(event)
            else:
                self._dirty = True
                self._repair.set()

    def request_catch_up(self) -> None:
        """Read the store now (after a bus reconnect, say)."""
        self._dirty = True
        self._repair.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._repair.wait(), self._interval)
            self._repair.clear()
            try:
                await self._catch_up()
            except Exception:  # the store may be down for a while; try again next round
                logger.warning("catching up from the store failed", exc_info=True)

    async def _catch_up(self) -> None:
        self._repairing = True
        try:
            while True:
                self._dirty = False
                events = await self._store.read_log(self.cursor, limit=1000)
                for event in events:
                    if event.seq is not None and event.seq > self.cursor:
                        self._deliver(event)
                if not events and not self._dirty:
                    return
        finally:
            self._repairing = False

    def _deliver(self, event: Event) -> None:
        self.cursor = event.seq or self.cursor
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("event listener failed")
