"""The default bus: this process only."""

from __future__ import annotations

from hub.bus.base import Bus, EventSink
from hub.errors import StoreUnavailable
from hub.models import Event


class MemoryBus(Bus):
    """Delivers published events straight to this process's sink."""

    def __init__(self) -> None:
        self._sink: EventSink | None = None

    async def start(self, sink: EventSink) -> None:
        self._sink = sink

    async def close(self) -> None:
        self._sink = None

    async def publish(self, events: list[Event]) -> None:
        if self._sink is not None:
            self._sink(events)

    async def ping(self) -> None:
        if self._sink is None:
            raise StoreUnavailable("the memory bus is not started")

    @property
    def crosses_processes(self) -> bool:
        return False
