"""``callback-hub tail``: live event lines with a progress bar per task."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from hub.cli import build_parser
from hub.tail import bar, tail
from tests.conftest import API_KEY
from tests.test_sse_helpers import eventually, served_hub


def test_the_command_line_has_tail() -> None:
    args = build_parser().parse_args(
        ["tail", "--task", "tsk_a", "--task", "tsk_b", "--channel", "renders"]
    )
    assert args.task == ["tsk_a", "tsk_b"] and args.channel == "renders"
    assert bar(50) == "[############------------]  50%"


async def test_tail_follows_a_task_to_its_end(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        task = await s.task()
        out = io.StringIO()
        following = asyncio.create_task(tail(s.url, api_key=API_KEY, tasks=[task["id"]], out=out))
        await eventually(lambda: "state" in out.getvalue())
        await s.hook(task, status="running", progress=40)
        await s.hook(task, status="succeeded", outputs=[{"url": "https://cdn/x.png"}])
        assert await asyncio.wait_for(following, 10) == 0  # ends with the task
        lines = out.getvalue().splitlines()
        assert len(lines) == 3
        assert task["id"] in lines[0] and "queued" in lines[0]
        assert "task.progress" in lines[1] and lines[1].endswith(bar(40))
        assert "task.succeeded" in lines[2] and "https://cdn/x.png" in lines[2]


async def test_tail_follows_several_tasks_until_all_finish(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        a, b = await s.task(), await s.task()
        out = io.StringIO()
        following = asyncio.create_task(
            tail(s.url, api_key=API_KEY, tasks=[a["id"], b["id"]], out=out)
        )
        await eventually(lambda: len(s.hub.fanout) == 1)
        await s.hook(a, status="running", progress=10)
        await s.hook(a, status="succeeded")
        await s.hook(b, status="failed", error={"category": "quota", "message": "out of credit"})
        assert await asyncio.wait_for(following, 10) == 0
        text = out.getvalue()
        assert "quota: out of credit" in text and text.count("\n") == 3


async def test_tail_reports_a_refusal(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        assert await asyncio.wait_for(tail(s.url, api_key="wrong", out=io.StringIO()), 10) == 1
