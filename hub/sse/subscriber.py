"""One stream's bounded buffer, filled by the fan-out and drained by the stream's own task.

The fan-out appends frames (shared bytes, encoded once) and wakes the stream; the stream
writes everything buffered as one chunk, so a burst costs one wake-up and one write per
subscriber instead of one per event. A subscriber that falls more than ``limit`` bytes behind
is cut off: its buffer is dropped at once (server memory stays bounded) and a send it is stuck
in is cancelled. It can resume from the last ``id:`` it received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hub.models import Event
from hub.sse.filters import EventFilter

#: Why a stream ended.
SLOW = "slow"
SHUTDOWN = "shutdown"
DISCONNECTED = "disconnected"
FINISHED = "finished"


class Subscriber:
    """A local stream as the fan-out sees it."""

    __slots__ = (
        "_on_close",
        "_waiter",
        "aborted",
        "buffer",
        "closed",
        "ending",
        "filter",
        "floor",
        "limit",
        "quiet",
        "sending",
        "size",
        "stream_task",
        "task_id",
        "unresolved",
        "until_terminal",
    )

    def __init__(
        self,
        event_filter: EventFilter,
        *,
        limit: int,
        task_id: str | None = None,
        until_terminal: bool = False,
    ) -> None:
        self.filter = event_filter
        self.task_id = task_id
        #: Task streams end after their task's terminal event unless asked to stay open.
        self.until_terminal = until_terminal
        #: Events with ``seq <= floor`` were (or will be) sent by the catch-up: never twice.
        self.floor = 0
        self.limit = limit
        self.buffer: list[bytes | Event] = []
        self.size = 0
        #: Events in the buffer whose task metadata was not known yet (tag filters only).
        self.unresolved = 0
        self.closed: str | None = None
        self.ending = False
        self.quiet = True
        self.sending = False
        #: Set when the hub cancelled the stream's task (so the stream knows it was not the
        #: server or the event loop).
        self.aborted = False
        self.stream_task: asyncio.Task[object] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._on_close: Callable[[Subscriber], None] | None = None

    def push(self, seq: int, frame: bytes) -> None:
        """Queue an event's frame; cut the subscriber if it is too far behind."""
        if seq <= self.floor or self.closed is not None:
            return
        self.buffer.append(frame)
        self.size += len(frame)
        self.quiet = False
        if self.size > self.limit:
            self.close(SLOW)
            return
        # _wake() inlined: this runs once per subscriber per event, the fan-out's hot loop.
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def push_unresolved(self, event: Event) -> None:
        """Queue an event the stream must check against its tags before writing."""
        if event.seq is None or event.seq <= self.floor or self.closed is not None:
            return
        self.unresolved += 1
        self.buffer.append(event)
        self.size += len(event.encoded())
        self.quiet = False
        if self.size > self.limit:
            self.close(SLOW)
            return
        self._wake()

    def push_raw(self, frame: bytes) -> None:
        """Queue bytes outside the log (a heartbeat)."""
        if self.closed is None:
            self.buffer.append(frame)
            self.size += len(frame)
            self._wake()

    def end_after_flush(self) -> None:
        """The task reached its terminal state: write what is buffered, then end."""
        self.ending = True
        self._wake()

    def take(self) -> list[bytes | Event]:
        """Everything buffered, oldest first; the buffer starts empty again."""
        items = self.buffer
        self.buffer = []
        self.size = 0
        self.unresolved = 0
        return items

    async def wait(self) -> None:
        """Until there is something to write or the stream must end."""
        if self.buffer or self.closed is not None or self.ending:
            return
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def close(self, reason: str) -> None:
        """End the stream: ``slow`` and ``disconnected`` drop what is buffered."""
        if self.closed is not None:
            return
        self.closed = reason
        if reason != SHUTDOWN:
            self.buffer = []
            self.size = 0
        if self._on_close is not None:
            self._on_close(self)
        if self._waiter is not None:
            self._wake()
        elif self.sending and reason in (SLOW, SHUTDOWN):
            # Stuck in a send the client does not read: nothing else would ever unblock it.
            # (A disconnect unblocks the send by itself.)
            self.abort()

    def abort(self) -> None:
        """Cancel the stream's task; it ends without completing its response."""
        if self.stream_task is not None and not self.aborted:
            self.aborted = True
            self.stream_task.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
