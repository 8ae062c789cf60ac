"""Writing one stream: headers, the catch-up, then the subscriber's buffer as it fills.

A bare ASGI response rather than sse-starlette or Starlette's ``StreamingResponse``: no queue
hop per event, no per-event task switch, and a burst goes out as one write (see the README's
benchmark). One small task per stream watches for the client going away, because a server
does not report a disconnect on ``send``.

Deliberate ASGI behaviour worth knowing before "fixing" it:

* A stream cut for being too slow (or still stuck at shutdown) is cancelled inside ``send``
  and returns without completing the response: the server then closes the connection, which
  is the point. Its "returned without completing response" log line is dropped by
  :class:`QuietCut`, for these streams only.
* A stream ended by shutdown completes its response normally, so the client reconnects (to
  another replica) and resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import cast

from starlette.types import Message, Receive, Scope, Send

from hub.models import Event
from hub.sse.catchup import CatchUp
from hub.sse.fanout import FanOut
from hub.sse.frames import event_frame, retry_frame
from hub.sse.subscriber import DISCONNECTED, FINISHED, SHUTDOWN, SLOW, Subscriber

logger = logging.getLogger("hub.sse")

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    # no-cache: never served from a cache; X-Accel-Buffering: nginx passes each write on
    # at once instead of buffering the stream (nginx #1505). Nothing here compresses.
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

_cut: contextvars.ContextVar[bool] = contextvars.ContextVar("hub_sse_cut", default=False)


class QuietCut(logging.Filter):
    """Drops the server's "incomplete response" error for streams the hub cut on purpose.

    The record is logged in the stream's own task right after the app returns, so the
    context variable set by that stream is still visible; other responses are untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_cut.get() and "without completing response" in str(record.msg))


def install_quiet_cut() -> None:
    """Attach :class:`QuietCut` to uvicorn's error logger (once)."""
    log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, QuietCut) for f in log.filters):
        log.addFilter(QuietCut())


class EventStream:
    """The ASGI response of one stream."""

    def __init__(
        self, fanout: FanOut, sub: Subscriber, catch_up: CatchUp, *, retry_ms: int
    ) -> None:
        self.fanout = fanout
        self.sub = sub
        self.catch_up = catch_up
        self.retry_ms = retry_ms
        self._send: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.sub
        task = asyncio.current_task()
        sub.stream_task = task
        self._send = send
        watcher: asyncio.Task[None] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            # The first bytes flush the headers through any proxy, and set the retry delay.
            await self._write(retry_frame(self.retry_ms))
            watcher = asyncio.ensure_future(_watch_disconnect(receive, sub))
            cursor = self.fanout.register(sub)
            if await self.catch_up.run(self._write, cursor):
                sub.end_after_flush()
            await self._live()
            if sub.closed == SLOW:
                _cut.set(True)  # no clean end: the client must see it was cut, and resume
                return
            if sub.closed != DISCONNECTED:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            # Only a cancellation the hub asked for (Subscriber.abort) ends the stream quietly.
            if task is None or not sub.aborted or task.uncancel() > 0:
                raise
            _cut.set(True)
        except OSError:  # servers on ASGI spec 2.4+ raise on a send after the client left
            sub.close(DISCONNECTED)
        finally:
            if watcher is not None:
                watcher.cancel()
            sub.close(FINISHED)
            self.fanout.release(sub)

    async def _live(self) -> None:
        sub = self.sub
        while True:
            await sub.wait()
            if sub.buffer and sub.closed in (None, SHUTDOWN):
                items = sub.take()
                data = (
                    await self._resolve(items)
                    if any(isinstance(i, Event) for i in items)
                    else b"".join(cast(list[bytes], items))
                )
                if data:
                    await self._write(data)
                continue
            if sub.closed is not None or sub.ending:
                return

    async def _write(self, data: bytes) -> None:
        assert self._send is not None
        self.sub.sending = True
        await self._send({"type": "http.response.body", "body": data, "more_body": True})
        self.sub.sending = False

    async def _resolve(self, items: list[bytes | Event]) -> bytes:
        """Frames of events whose task metadata was unknown when they were pushed."""
        sub = self.sub
        parts = []
        for item in items:
            if not isinstance(item, Event):
                parts.append(item)
            elif sub.filter.matches_metadata(await self.fanout.metadata.fetch(item.task_id)):
                parts.append(event_frame(item))
        return b"".join(parts)


async def _watch_disconnect(receive: Receive, sub: Subscriber) -> None:
    message: Message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()
    sub.close(DISCONNECTED)
