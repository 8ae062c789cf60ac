"""``GET /v1/events``: what is streamed, with which ids, filters, headers and refusals."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tests.test_sse_helpers import AUTH, Reader, eventually, seqs, served_hub, stream


async def test_every_applied_event_once_with_its_seq_as_id(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        async with stream(s.url + "/v1/events", AUTH) as reader:
            assert reader.response.status_code == 200
            a = await s.task()
            b = await s.task("linkrapi")
            await s.hook(a, status="running", progress=10)
            await s.hook(a, status="running", progress=10)  # duplicate: stored, not streamed
            await s.hook(b, task_id="lk-1", status="processing", progress=40)
            await s.hook(a, status="succeeded", outputs=[{"url": "https://cdn/a.png"}])
            got = await reader.take(5)
        assert seqs(got) == [1, 2, 3, 4, 5]
        assert [m.data["seq"] for m in got] == [1, 2, 3, 4, 5]
        assert [m.data["type"] for m in got] == [
            "task.created",
            "task.created",
            "task.progress",
            "task.progress",
            "task.succeeded",
        ]
        assert got[4].data["outputs"][0]["url"] == "https://cdn/a.png"
        assert "raw" not in got[0].data


async def test_filters_select_by_task_provider_type_status_and_channel(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        a = await s.task(metadata={"channel": "renders"})
        b = await s.task("linkrapi", metadata={"channel": "other"})
        filters = {
            "task": {"task_id": a["id"]},
            "provider": {"provider": "linkrapi"},
            "type": {"type": "task.succeeded,task.failed"},
            "status": {"status": "running"},
            "channel": {"channel": "renders"},
            "both": {"channel": "renders", "status": "succeeded"},
        }
        async with open_streams(s.url, filters) as readers:
            await s.hook(a, status="running", progress=20)
            await s.hook(b, task_id="lk-2", status="processing", progress=30)
            await s.hook(b, task_id="lk-2", status="failed")
            await s.hook(a, status="succeeded")
            expected = {
                "task": [3, 6],
                "provider": [4, 5],
                "type": [5, 6],
                "status": [3, 4],
                "channel": [3, 6],
                "both": [6],
            }
            for name, want in expected.items():
                got = await readers[name].take(len(want))
                assert seqs(got) == want, name


async def test_stream_headers_retry_hint_and_heartbeats(tmp_path: Path) -> None:
    async with (
        served_hub(tmp_path, sse_heartbeat_s=0.1, sse_retry_ms=1234) as s,
        stream(s.url + "/v1/events", AUTH) as reader,
    ):
        headers = reader.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in headers
        lines = []
        async with asyncio.timeout(5):
            async for line in reader.response.aiter_lines():
                lines.append(line)
                if sum(line.startswith(":") for line in lines) == 2:
                    break
        assert lines[:2] == ["retry: 1234", ""]


async def test_bad_requests_get_json_4xx(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        task = await s.task()
        cases = [
            ("/v1/events", {}, 401),
            ("/v1/events?status=bogus", AUTH, 400),
            ("/v1/events?type=task.nope", AUTH, 400),
            ("/v1/events?colour=red", AUTH, 400),
            ("/v1/events?task_id=", AUTH, 400),
            ("/v1/events", {**AUTH, "Last-Event-ID": "abc"}, 400),
            ("/v1/events?last_event_id=-1", AUTH, 400),
            ("/v1/events?last_event_id=" + "9" * 5000, AUTH, 400),
            (f"/v1/tasks/{task['id']}/events?stay_open=maybe", AUTH, 400),
            (f"/v1/tasks/{task['id']}/events?status=running", AUTH, 400),
            ("/v1/tasks/tsk_nope/events", AUTH, 404),
        ]
        for path, headers, status in cases:
            response = await s.api.get(path, headers={"Authorization": ""} | headers)
            assert response.status_code == status, (path, response.text)
            error = response.json()["error"]
            assert error["code"] and error["message"], path


async def test_a_cap_on_streams_answers_503_with_retry_after(tmp_path: Path) -> None:
    async with served_hub(tmp_path, sse_max_streams=2) as s:
        async with (
            stream(s.url + "/v1/events", AUTH) as one,
            stream(s.url + "/v1/events", AUTH) as two,
        ):
            assert one.response.status_code == two.response.status_code == 200
            refused = await s.api.get("/v1/events")
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == "too_many_streams"
        await eventually(lambda: not len(s.hub.fanout))  # slots come back when streams end
        async with stream(s.url + "/v1/events", AUTH) as again:
            assert again.response.status_code == 200


@contextlib.asynccontextmanager
async def open_streams(
    url: str, filters: dict[str, dict[str, str]]
) -> AsyncIterator[dict[str, Reader]]:
    async with contextlib.AsyncExitStack() as stack:
        readers = {
            name: await stack.enter_async_context(stream(url + "/v1/events", AUTH, params))
            for name, params in filters.items()
        }
        for reader in readers.values():
            assert reader.response.status_code == 200
        yield readers
