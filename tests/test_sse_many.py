"""1,000 concurrent subscribers on one process each get every event, in order."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import API_KEY
from tests.test_sse_helpers import eventually, served_hub

SUBSCRIBERS = 1000
_ID = re.compile(rb"id: (\d+)\n")


async def _subscribe(url: str, want: int, ready: list[int]) -> list[int]:
    """A raw connection (cheap enough for a thousand) that reads until ``want`` ids came."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            f"GET /v1/events HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {API_KEY}\r\n\r\n".encode()
        )
        data = await reader.readuntil(b"retry: ")
        ready.append(1)
        while len(ids := [int(i) for i in _ID.findall(data)]) < want:
            chunk = await reader.read(65536)
            assert chunk, "stream ended early"
            data += chunk
        return ids
    finally:
        writer.close()


async def test_a_thousand_subscribers_get_every_event(tmp_path: Path) -> None:
    async with served_hub(tmp_path, sse_max_streams=SUBSCRIBERS) as s:
        ready: list[int] = []
        events = 6
        subscribers = [
            asyncio.create_task(_subscribe(s.url, events, ready)) for _ in range(SUBSCRIBERS)
        ]
        try:
            await eventually(lambda: len(ready) == SUBSCRIBERS, 30)
            task = await s.task()
            for progress in (10, 20, 30, 40):
                await s.hook(task, status="running", progress=progress)
            await s.hook(task, status="succeeded")
            results = await asyncio.wait_for(asyncio.gather(*subscribers), 30)
        finally:
            for subscriber in subscribers:
                subscriber.cancel()
        assert all(ids == [1, 2, 3, 4, 5, 6] for ids in results)
        assert s.hub.fanout.stats.cut_slow == 0
