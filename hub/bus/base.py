"""The bus contract: tells every hub process that events were committed.

The store is the truth; the bus only makes delivery fast. A process that misses bus messages
(a Redis restart, a slow listener) catches up from the store (:mod:`hub.dispatch`), so a bus
may drop messages but must not invent them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from hub.errors import HubError
from hub.models import Event

#: Receives committed, applied events, in the order one publisher published them.
EventSink = Callable[[list[Event]], None]


class BusUnavailable(HubError):
    """The bus is not connected; delivery falls back to reading the store."""

    status_code = 503
    code = "bus_unavailable"


class Bus(ABC):
    """Carries committed events between hub processes."""

    #: Called after a reconnect, when messages may have been lost meanwhile; the hub points it
    #: at :meth:`hub.dispatch.Dispatcher.request_catch_up` so nothing waits for the next check.
    on_reconnect: Callable[[], None] | None = None
    #: Called with each received message's age in seconds, publish to receive (bus lag).
    on_lag: Callable[[float], None] | None = None
    #: Called when the bus learns of events it cannot carry itself (too big for a message):
    #: the hub points it at the dispatcher's catch-up, which reads them from the store.
    on_gap: Callable[[], None] | None = None
    #: Times the connection came back after a loss (the first connect is not counted).
    reconnects = 0
    _connects = 0

    def _connected(self) -> bool:
        """Record that the bus (re)connected; True, with ``on_reconnect`` called, for a
        reconnect: whatever was published meanwhile is only in the store."""
        self._connects += 1
        if self._connects == 1:
            return False
        self.reconnects += 1
        if self.on_reconnect is not None:
            self.on_reconnect()
        return True

    @abstractmethod
    async def start(self, sink: EventSink) -> None:
        """Connect, and deliver every event published from now on to ``sink``."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect."""

    @abstractmethod
    async def publish(self, events: list[Event]) -> None:
        """Announce committed events (in ``seq`` order) to every process, this one included."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the bus is not connected (used by ``/readyz``)."""

    @property
    def crosses_processes(self) -> bool:
        """Whether events published in one process reach the others."""
        return True
