"""The per-process fan-out: one dispatcher listener that feeds every local stream.

The dispatcher hands each applied event over exactly once, in ``seq`` order. The fan-out
encodes it once and appends the same bytes to every matching subscriber's buffer: streams that
take everything are a flat tuple, task streams are found by task id, and only streams with
other filters are tested one by one. Nothing here awaits, so a slow stream cannot hold up the
others; it is cut off by its own bounded buffer (:mod:`hub.sse.subscriber`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hub.aio import cancel_and_wait
from hub.errors import HubError
from hub.models import Event
from hub.sse.frames import HEARTBEAT, event_frame
from hub.sse.metadata import UNKNOWN, MetadataCache
from hub.sse.subscriber import SHUTDOWN, SLOW, Subscriber
from hub.store.base import Store

logger = logging.getLogger("hub.sse")


class StreamsFull(HubError):
    """The process already serves as many streams as it may."""

    status_code = 503
    code = "too_many_streams"


@dataclass(slots=True)
class FanOutStats:
    """Counters for metrics and tests."""

    opened: int = 0
    cut_slow: int = 0
    events: int = 0


class FanOut:
    """Routes applied events to the local streams that want them."""

    def __init__(
        self,
        store: Store,
        cursor: Callable[[], int],
        *,
        heartbeat_s: float = 15.0,
        buffer_bytes: int = 1 << 20,
        max_streams: int = 10_000,
    ) -> None:
        self._cursor = cursor
        self.heartbeat_s = heartbeat_s
        self.buffer_bytes = buffer_bytes
        self.max_streams = max_streams
        self.metadata = MetadataCache(store)
        self.stats = FanOutStats()
        self.closing = False
        # Admitted streams, from the cap check until their response ends.
        self._admitted: set[Subscriber] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Registered streams, by how they are matched. Dicts keep insertion order (fairness:
        # the longest-connected stream is served first) and make removal O(1).
        self._everything: dict[Subscriber, None] = {}
        self._filtered: dict[Subscriber, None] = {}
        self._by_task: dict[str, dict[Subscriber, None]] = {}
        self._everything_view: tuple[Subscriber, ...] = ()
        self._filtered_view: tuple[Subscriber, ...] = ()
        self._stale_views = False
        self._heartbeat: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._admitted)

    def streams(self) -> list[Subscriber]:
        """The streams this process serves right now (for metrics, debugging and tests)."""
        return list(self._admitted)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat."""
        self.closing = False
        if self._heartbeat is None and self.heartbeat_s > 0:
            self._heartbeat = asyncio.create_task(self._beat(), name="hub-sse-heartbeat")

    def drain(self) -> None:
        """End every stream now (buffered events are still written) and admit no new ones.

        Runs on SIGTERM before the server waits for connections, so clients reconnect to
        another replica (and resume) instead of the shutdown hanging on open streams.
        """
        if not self.closing:
            logger.info("ending %d event streams", len(self._admitted))
        self.closing = True
        for sub in list(self._admitted):
            sub.close(SHUTDOWN)

    async def close(self, grace: float = 2.0) -> None:
        """:meth:`drain`, wait up to ``grace`` seconds for streams to end, then cut the rest."""
        self.drain()
        await cancel_and_wait(self._heartbeat)
        self._heartbeat = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        for sub in list(self._admitted):
            sub.abort()

    # -- streams -------------------------------------------------------------------------

    def admit(self, sub: Subscriber) -> None:
        """Count a new stream against the cap; raises :class:`StreamsFull`."""
        if len(self._admitted) >= self.max_streams:
            raise StreamsFull(f"this hub serves at most {self.max_streams} streams")
        self._admitted.add(sub)
        self._idle.clear()
        self.stats.opened += 1

    def release(self, sub: Subscriber) -> None:
        """The stream's response is over."""
        self._unregister(sub)
        self._admitted.discard(sub)
        if not self._admitted:
            self._idle.set()

    def register(self, sub: Subscriber) -> int:
        """Start feeding ``sub``; returns the cursor C it is fed from (events ``> C``).

        The caller replays ``(floor, C]`` from the store: registering first and reading
        after leaves no gap, and ``sub.floor`` drops what the replay already covers.
        """
        sub._on_close = self._on_close
        event_filter = sub.filter
        if event_filter.task_ids:
            for task_id in event_filter.task_ids:
                self._by_task.setdefault(task_id, {})[sub] = None
        elif event_filter.empty:
            self._everything[sub] = None
        else:
            self._filtered[sub] = None
        self._stale_views = True
        return self._cursor()

    def _on_close(self, sub: Subscriber) -> None:
        if sub.closed == SLOW:
            self.stats.cut_slow += 1
        self._unregister(sub)

    def _unregister(self, sub: Subscriber) -> None:
        for index in (self._everything, self._filtered):
            if sub in index:
                del index[sub]
                self._stale_views = True
        for task_id in sub.filter.task_ids:
            subs = self._by_task.get(task_id)
            if subs is not None:
                subs.pop(sub, None)
                if not subs:
                    del self._by_task[task_id]

    # -- delivery ------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Dispatcher listener: hand ``event`` to every stream that wants it."""
        seq = event.seq
        if seq is None:
            return
        self.stats.events += 1
        if self._stale_views:
            # Subscribers may be cut (and removed) while a loop below runs: loop over tuples.
            self._everything_view = tuple(self._everything)
            self._filtered_view = tuple(self._filtered)
            self._stale_views = False
        by_task = self._by_task.get(event.task_id) if event.task_id is not None else None
        if not (self._everything_view or self._filtered_view or by_task):
            return  # nobody listens: encoding the frame would be wasted on every webhook
        frame = event_frame(event)
        for sub in self._everything_view:
            sub.push(seq, frame)
        if by_task:
            terminal = event.status is not None and event.status.terminal
            for sub in tuple(by_task):
                self._offer(sub, event, frame)
                if terminal and sub.until_terminal and seq > sub.floor:
                    sub.end_after_flush()
        for sub in self._filtered_view:
            self._offer(sub, event, frame)

    def _offer(self, sub: Subscriber, event: Event, frame: bytes) -> None:
        event_filter = sub.filter
        if not event_filter.matches_event(event):
            return
        if event_filter.meta:
            metadata = self.metadata.get(event.task_id)
            if metadata is UNKNOWN:
                sub.push_unresolved(event)  # the stream looks it up before writing
                return
            if not event_filter.matches_metadata(metadata):
                return
        sub.push(event.seq or 0, frame)

    async def _beat(self) -> None:
        # One timer for every stream: a stream that wrote nothing for a whole interval gets a
        # comment. Per-stream timers would cost memory and wake-ups at 10,000 streams.
        while True:
            await asyncio.sleep(self.heartbeat_s)
            for sub in list(self._admitted):
                if sub.quiet:
                    sub.push_raw(HEARTBEAT)
                sub.quiet = True
