"""Streams across server restarts and shutdowns, with real ``callback-hub serve`` processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub import HubClient
from tests.conftest import API_KEY
from tests.support import HubProcess
from tests.test_sse_helpers import AUTH, eventually, seqs, stream


@pytest.fixture
async def hub_process(tmp_path: Path) -> AsyncIterator[HubProcess]:
    env = {
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_SECRET": "test-secret",
        "HUB_API_KEY": API_KEY,
        "HUB_SSE_RETRY_MS": "100",
    }
    process = HubProcess(env, log=tmp_path / "hub.log")
    await asyncio.to_thread(process.start)
    try:
        yield process
    finally:
        await asyncio.to_thread(process.kill)


def _streams(process: HubProcess) -> int:
    text = httpx.get(process.url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("hub_open_streams "):
            return int(float(line.split()[1]))
    return -1


async def _post(api: httpx.AsyncClient, task: dict[str, object], progress: int) -> None:
    response = await api.post(
        str(task["callback_url"]), json={"status": "running", "progress": progress}
    )
    assert response.status_code == 200, response.text


async def test_resume_after_kill_and_restart_with_events_posted_while_away(
    hub_process: HubProcess,
) -> None:
    async with httpx.AsyncClient(base_url=hub_process.url, headers=AUTH, timeout=10) as api:
        async with stream(hub_process.url + "/v1/events", AUTH) as reader:
            task = (await api.post("/v1/tasks", json={"provider": "generic"})).json()
            for progress in (10, 20, 30):
                await _post(api, task, progress)
            assert seqs(await reader.take(4)) == [1, 2, 3, 4]
            await asyncio.to_thread(hub_process.kill)  # SIGKILL: no shutdown code runs
            with pytest.raises(httpx.HTTPError):
                await reader.rest()
        await asyncio.to_thread(hub_process.start)  # same port, same SQLite file
        for progress in (40, 50, 60):  # nobody is listening
            await _post(api, task, progress)
        async with stream(hub_process.url + "/v1/events", {**AUTH, "Last-Event-ID": "4"}) as reader:
            assert seqs(await reader.take(3)) == [5, 6, 7]
            await _post(api, task, 70)
            assert seqs(await reader.take(1)) == [8]


async def test_sigterm_ends_streams_at_once_and_the_client_resumes_after_restart(
    hub_process: HubProcess,
) -> None:
    received: list[int] = []

    async def follow() -> None:
        async with HubClient(hub_process.url, api_key=API_KEY, max_backoff=0.5) as client:
            async for message in client.stream():
                assert message.kind == "event" and message.event is not None
                received.append(message.event.seq or 0)

    following = asyncio.create_task(follow())
    try:
        async with httpx.AsyncClient(base_url=hub_process.url, headers=AUTH, timeout=10) as api:
            await eventually(lambda: following.done() or _streams(hub_process) == 1, 10)
            task = (await api.post("/v1/tasks", json={"provider": "generic"})).json()
            for progress in (10, 20):
                await _post(api, task, progress)
            await eventually(lambda: len(received) == 3, 10)
            # SIGTERM with a stream open: it must end at once, not after the server's
            # 5 s graceful-shutdown timeout (which would log an error and cancel it).
            await asyncio.to_thread(hub_process.stop)
            # uvicorn re-raises the signal once it is done: exiting "by SIGTERM" is the norm.
            assert hub_process.proc is not None and hub_process.proc.returncode in (0, -15)
            log = hub_process.log.read_text()
            assert "timeout graceful shutdown exceeded" not in log, log
            assert "Exception in ASGI application" not in log, log
            await asyncio.to_thread(hub_process.start)
            for progress in (30, 40, 50):
                await _post(api, task, progress)
            await eventually(lambda: len(received) == 6, 15)
    finally:
        following.cancel()
    assert received == [1, 2, 3, 4, 5, 6]
