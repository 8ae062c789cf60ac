"""Server-Sent Events: one fan-out per process, streams that resume from the durable log.

::

    Dispatcher ──on_event──▶ FanOut ──push (encoded once)──▶ Subscriber buffers ──▶ streams
                                                           (bounded; a slow one is cut)

:mod:`hub.sse.fanout` routes each applied event to the local streams that want it,
:mod:`hub.sse.subscriber` is one stream's bounded buffer, :mod:`hub.sse.stream` writes it to
the connection, and :mod:`hub.sse.catchup` replays the log (or sends a ``reset``) before a
stream goes live.
"""

from __future__ import annotations

from hub.sse.fanout import FanOut
from hub.sse.filters import EventFilter

__all__ = ["EventFilter", "FanOut"]
