"""End streams the moment the process is told to stop, before the server waits for them.

uvicorn (and other ASGI servers) handle SIGTERM by waiting for open connections to close and
only then running the lifespan shutdown, so streams would hold the shutdown for the whole
grace period (sse-starlette #8, #124, #167). This chains a handler in front of the server's:
it schedules :meth:`hub.sse.FanOut.drain` on the hub's loop and then calls the server's own
handler unchanged. Nothing is monkey-patched, and the previous handler comes back on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def on_termination(callback: Callable[[], None]) -> Iterator[None]:
    """Run ``callback`` on the running loop at SIGTERM/SIGINT, then the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(callback)
        chained = previous.get(signum)
        if callable(chained):
            chained(signum, frame)
        elif chained == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in SIGNALS:
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, chained in previous.items():
            # Restore only our own: someone who chained after us keeps their handler.
            if signal.getsignal(signum) is handler:
                signal.signal(signum, chained if chained is not None else signal.SIG_DFL)
