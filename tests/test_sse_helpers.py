"""Helpers for the SSE tests: a served hub, webhook posting, and bounded SSE readers.

(Named ``test_sse_*`` to live with the tests it serves; it holds no tests itself.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hub import Hub
from tests.conftest import API_KEY, make_settings
from tests.support import serve

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Served:
    """A running hub behind uvicorn, and an API client for it."""

    hub: Hub
    url: str
    api: httpx.AsyncClient

    async def task(self, provider: str = "generic", **body: Any) -> dict[str, Any]:
        response = await self.api.post("/v1/tasks", json={"provider": provider, **body})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def hook(self, task: dict[str, Any], **body: Any) -> dict[str, Any]:
        response = await self.api.post(task["callback_url"], json=body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def served_hub(tmp_path: Path, **settings: Any) -> AsyncIterator[Served]:
    """A hub with ``settings`` overrides; open streams are ended before the server stops."""
    hub = Hub(make_settings(tmp_path, **settings))
    async with (
        serve(hub.app) as url,
        httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as api,
    ):
        try:
            yield Served(hub, url, api)
        finally:
            hub.fanout.drain()  # the in-loop server waits for open connections otherwise


@dataclass
class Message:
    """One parsed SSE message."""

    id: int | None
    event: str
    data: Any


@dataclass
class Reader:
    """Reads SSE messages from a streaming httpx response."""

    response: httpx.Response
    comments: int = 0
    retry: int | None = None
    _lines: AsyncIterator[str] | None = None
    _pending: list[str] = field(default_factory=list)

    async def next(self, timeout: float = 5.0) -> Message | None:
        """The next message, or None when the stream ended."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        async with asyncio.timeout(timeout):
            fields: dict[str, str] = {}
            async for line in self._lines:
                if line == "":
                    if "data" in fields:
                        seq = fields.get("id")
                        return Message(
                            int(seq) if seq else None,
                            fields.get("event", "message"),
                            json.loads(fields["data"]),
                        )
                    fields = {}
                    continue
                if line.startswith(":"):
                    self.comments += 1
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "retry":
                    self.retry = int(value)
                else:
                    fields[name] = value
            return None

    async def heartbeat(self, timeout: float = 5.0) -> None:
        """Read until a comment line (a heartbeat) arrives; messages before it are dropped."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line.startswith(":"):
                    self.comments += 1
                    return
        raise AssertionError("the stream ended before a heartbeat")

    async def take(self, count: int, timeout: float = 10.0) -> list[Message]:
        """Exactly ``count`` messages (fails if the stream ends first)."""
        got = []
        async with asyncio.timeout(timeout):
            while len(got) < count:
                message = await self.next(timeout)
                assert message is not None, f"stream ended after {len(got)} of {count}"
                got.append(message)
        return got

    async def rest(self, timeout: float = 10.0) -> list[Message]:
        """Every message until the stream ends."""
        got = []
        async with asyncio.timeout(timeout):
            while (message := await self.next(timeout)) is not None:
                got.append(message)
        return got


@contextlib.asynccontextmanager
async def stream(
    url: str, headers: dict[str, str] | None = None, params: Any = None
) -> AsyncIterator[Reader]:
    """Open an SSE stream (its own connection) and read it; status is checked by callers."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=30)) as client:  # noqa: SIM117
        async with client.stream("GET", url, headers=headers or {}, params=params) as response:
            yield Reader(response)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) until ``check()`` holds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def seqs(messages: list[Message]) -> list[int]:
    """The ids of log events (not of hub messages such as ``state``)."""
    return [m.id for m in messages if m.event == "message" and m.id is not None]
