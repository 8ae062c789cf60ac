"""``HubClient``: tasks over HTTP, ``wait``, and streams that resume on their own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from hub import HubClient, Status, WaitTimeout
from hub.client import HubHTTPError
from hub.sse.subscriber import SLOW
from tests.conftest import API_KEY
from tests.test_sse_helpers import eventually, served_hub


async def test_register_get_and_wait(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s, HubClient(s.url, api_key=API_KEY) as client:
        task = await client.register("generic", metadata={"channel": "a"})
        assert (await client.get(task["id"])).status is Status.QUEUED
        with pytest.raises(WaitTimeout) as timed_out:
            await client.wait(task["id"], timeout=0.2)
        assert timed_out.value.task.id == task["id"]
        waiting = asyncio.create_task(client.wait(task["id"], timeout=10))
        await s.hook(task, status="succeeded", outputs=[{"url": "https://cdn/x.png"}])
        done = await asyncio.wait_for(waiting, 10)
        assert done.status is Status.SUCCEEDED and done.outputs[0].url == "https://cdn/x.png"
        with pytest.raises(HubHTTPError) as missing:
            await client.get("tsk_nope")
        assert (missing.value.status_code, missing.value.code) == (404, "task_not_found")


async def test_task_stream_with_a_subscriber_token_ends_after_the_terminal_event(
    tmp_path: Path,
) -> None:
    async with served_hub(tmp_path) as s, HubClient(s.url) as client:  # no API key
        task = await s.task()
        token = parse_qs(urlsplit(task["events_url"]).query)["token"][0]
        messages = []

        async def follow() -> None:
            async for message in client.stream(task_id=task["id"], token=token):
                messages.append(message)

        following = asyncio.create_task(follow())
        await eventually(lambda: len(messages) == 1)
        await s.hook(task, status="running", progress=40)
        await s.hook(task, status="failed", error={"category": "moderation", "message": "no"})
        await asyncio.wait_for(following, 10)  # the generator ends by itself
        assert [m.kind for m in messages] == ["state", "event", "event"]
        assert messages[0].task is not None and messages[0].task.status is Status.QUEUED
        last = messages[-1].event
        assert last is not None and last.error is not None
        assert last.error.category.value == "moderation"
        with pytest.raises(HubHTTPError) as refused:
            async for _ in client.stream(task_id=task["id"], token="forged"):
                pass
        assert refused.value.status_code == 401


async def test_stream_reconnects_with_last_event_id_after_being_cut(tmp_path: Path) -> None:
    async with (
        served_hub(tmp_path, sse_retry_ms=50) as s,
        HubClient(s.url, api_key=API_KEY) as client,
    ):
        seen: list[int] = []

        async def follow() -> None:
            async for message in client.stream(channel="renders"):
                assert message.event is not None
                seen.append(message.event.seq or 0)

        following = asyncio.create_task(follow())
        await eventually(lambda: len(s.hub.fanout) == 1)
        task = await s.task(metadata={"channel": "renders"})
        other = await s.task(metadata={"channel": "elsewhere"})
        await s.hook(task, status="running", progress=10)
        await eventually(lambda: seen == [1, 3])
        for sub in s.hub.fanout.streams():  # as if it had fallen behind
            sub.close(SLOW)
        await s.hook(task, status="running", progress=20)  # while it reconnects
        await s.hook(other, status="running", progress=20)
        await s.hook(task, status="succeeded")
        await eventually(lambda: seen == [1, 3, 4, 6], 10)
        assert s.hub.fanout.stats.cut_slow == 1
        following.cancel()
