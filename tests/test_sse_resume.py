"""Resume: ``Last-Event-ID`` replays from the log, switches to live without a gap or a
duplicate, and gets an explicit ``reset`` when the id is no longer (or never was) in the log."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

from tests.test_sse_helpers import AUTH, eventually, seqs, served_hub, stream


async def test_resume_from_header_or_query_parameter(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        async with stream(s.url + "/v1/events", AUTH) as reader:
            task = await s.task()
            await s.hook(task, status="running", progress=10)
            first = await reader.take(2)
        assert seqs(first) == [1, 2]
        for progress in (20, 30, 40):  # while nobody listens
            await s.hook(task, status="running", progress=progress)
        async with stream(s.url + "/v1/events", {**AUTH, "Last-Event-ID": "2"}) as reader:
            assert seqs(await reader.take(3)) == [3, 4, 5]
            await s.hook(task, status="succeeded")
            assert seqs(await reader.take(1)) == [6]
        async with stream(s.url + "/v1/events?last_event_id=4", AUTH) as reader:
            assert seqs(await reader.take(2)) == [5, 6]


async def test_replay_switches_to_live_without_gap_or_duplicate(tmp_path: Path) -> None:
    """Clients resume from random ids while webhooks keep arriving on several tasks."""
    async with served_hub(tmp_path) as s:
        tasks = [await s.task(metadata={"channel": f"c{i % 2}"}) for i in range(8)]
        posted = asyncio.Event()

        async def post_lane(task: dict[str, Any]) -> None:
            for progress in range(1, 41):
                await s.hook(task, status="running", progress=progress)

        async def follow(after: int, params: dict[str, str]) -> tuple[Any, ...]:
            got: list[int] = []
            headers = {**AUTH, "Last-Event-ID": str(after)}
            async with stream(s.url + "/v1/events", headers, params) as reader:
                assert reader.response.status_code == 200

                async def read() -> None:
                    while (message := await reader.next(timeout=60)) is not None:
                        assert message.event == "message"
                        got.append(message.data["seq"])

                reading = asyncio.create_task(read())
                await posted.wait()
                target = final[params.get("channel", "")]
                await eventually(lambda: (got[-1] if got else after) >= target, 20)
                reading.cancel()
            return after, params, got

        final: dict[str, int] = {}
        followers = []
        lanes = [asyncio.create_task(post_lane(t)) for t in tasks]
        rng = random.Random(7)
        for i in range(16):  # connect while the lanes are posting
            await asyncio.sleep(0.02)
            cursor = s.hub.dispatcher.cursor
            after = rng.randint(max(0, cursor - 40), cursor)
            params = {"channel": "c0"} if i % 2 else {}
            followers.append(asyncio.create_task(follow(after, params)))
        await asyncio.gather(*lanes)
        log = await s.hub.store.read_log(0, limit=10_000)
        channel = {t["id"]: t["metadata"]["channel"] for t in tasks}
        final[""] = log[-1].seq or 0
        # A filtered follower ends on the last event it matches, not on the log's last one.
        final["c0"] = max(e.seq or 0 for e in log if channel.get(e.task_id or "") == "c0")
        posted.set()
        results = await asyncio.wait_for(asyncio.gather(*followers), 30)
        for after, params, got in results:
            want = [
                e.seq
                for e in log
                if e.seq is not None
                and e.seq > after
                and (not params or channel.get(e.task_id or "") == params["channel"])
            ]
            assert got == want, (after, params)


async def test_an_id_never_issued_gets_a_reset_then_live_events(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        running = await s.task()
        await s.hook(running, status="running", progress=5)
        async with stream(s.url + "/v1/events", {**AUTH, "Last-Event-ID": "999999"}) as reader:
            reset = await reader.next()
            assert reset is not None and reset.event == "reset"
            assert reset.data["reason"] == "unknown_id"
            assert reset.id == reset.data["last_event_id"] == 2
            assert [t["id"] for t in reset.data["tasks"]] == [running["id"]]
            assert reset.data["tasks"][0]["progress"] == 5
            await s.hook(running, status="running", progress=6)
            assert seqs(await reader.take(1)) == [3]


async def test_a_pruned_id_gets_a_reset_with_the_current_state(tmp_path: Path) -> None:
    async with served_hub(tmp_path, log_retention_s=0.05) as s:
        done, active = await s.task(), await s.task()
        await s.hook(done, status="succeeded")
        await s.hook(active, status="running", progress=30)
        time.sleep(0.1)  # noqa: ASYNC251  (let the finished task age past the retention)
        assert await s.hub.pruner.prune() == 2  # done's created + succeeded events
        async with stream(s.url + "/v1/events", {**AUTH, "Last-Event-ID": "0"}) as reader:
            reset = await reader.next()
            assert reset is not None and reset.event == "reset"
            assert reset.data["reason"] == "expired" and reset.id == 4
            assert [t["id"] for t in reset.data["tasks"]] == [active["id"]]
        # An id inside a hole the pruning left is just as gone: 1 < first kept (2) - 1 is
        # false, but seq 3 (done's success) is missing from the replay.
        async with stream(s.url + "/v1/events", {**AUTH, "Last-Event-ID": "2"}) as reader:
            reset = await reader.next()
            assert reset is not None and reset.event == "reset", reset
        # Still kept: a plain replay.
        async with stream(s.url + "/v1/events", {**AUTH, "Last-Event-ID": "3"}) as reader:
            assert seqs(await reader.take(1)) == [4]


async def test_task_stream_state_resume_end_and_stay_open(tmp_path: Path) -> None:
    async with served_hub(tmp_path, sse_heartbeat_s=0.1) as s:
        task = await s.task()
        url = task["events_url"]
        async with stream(url) as reader:
            state = await reader.next()
            assert state is not None and (state.event, state.id) == ("state", 1)
            await s.hook(task, status="running", progress=10)
            assert seqs(await reader.take(1)) == [2]
        await s.hook(task, status="running", progress=60)
        await s.hook(task, status="succeeded")
        async with stream(url, {"Last-Event-ID": "2"}) as reader:
            rest = await reader.rest()  # replay, then the stream ends after the terminal event
        assert seqs(rest) == [3, 4]
        after_end = await s.api.get(url, headers={"Last-Event-ID": "4", "Authorization": ""})
        assert after_end.status_code == 204  # EventSource stops reconnecting on 204
        async with stream(url + "&stay_open=1", {"Last-Event-ID": "2"}) as reader:
            assert seqs(await reader.take(2)) == [3, 4]
            await reader.heartbeat()  # still open after the terminal event
        # An unknown id on a task stream: a reset carrying the task's state.
        other = await s.task()
        async with stream(other["events_url"], {"Last-Event-ID": "99999"}) as reader:
            reset = await reader.next()
            assert reset is not None and reset.event == "reset"
            assert reset.data["reason"] == "unknown_id" and reset.data["task"]["id"] == other["id"]
