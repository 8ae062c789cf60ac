"""The SSE wire format: each frame is built once, as bytes, however many streams carry it.

Log events are unnamed (``onmessage`` receives them; the JSON ``type`` says what happened) and
carry their ``seq`` as ``id:``. The hub's own messages are named: ``state`` (a task stream's
opening snapshot) and ``reset`` (the resume position is gone; here is the current state).
"""

from __future__ import annotations

import json
from typing import Any

from hub.models import Event

#: A comment line: ignored by every SSE parser, but it keeps proxies and NATs from timing out.
HEARTBEAT = b":\n\n"


def event_frame(event: Event) -> bytes:
    """``id: <seq>`` and the event's cached public JSON."""
    return b"id: %d\ndata: %s\n\n" % (event.seq or 0, event.encoded())


def named_frame(name: str, data: Any, seq: int | None) -> bytes:
    """A named hub message; ``seq`` (when given) is where a reconnect resumes from."""
    body = json.dumps(data, separators=(",", ":")).encode()
    head = b"" if seq is None else b"id: %d\n" % seq
    return head + b"event: " + name.encode() + b"\ndata: " + body + b"\n\n"


def retry_frame(retry_ms: int) -> bytes:
    """How long a client waits before it reconnects."""
    return b"retry: %d\n\n" % retry_ms
