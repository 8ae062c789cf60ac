"""Submit through the hub against the simulator over real HTTP, for every supported provider."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import httpx
import pytest

from hub import Source, Status
from tests.sim_env import PROVIDERS, running


def _check_png(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == height * (1 + 3 * width)
    return width, height


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_submit_webhooks_complete(tmp_path: Path, provider: str) -> None:
    async with running(tmp_path) as env:
        task = await env.hub.submit(provider, prompt="a lighthouse at dawn --ar 3:2")
        assert task.external_id, "submit binds the provider's task id"
        assert task.metadata["prompt"] == "a lighthouse at dawn --ar 3:2"
        done = await env.wait(task.id)
        assert done.status is Status.SUCCEEDED
        assert done.outputs
        events = await env.hub.events(task.id)
        terminal = [e for e in events if e.status is Status.SUCCEEDED and e.seq is not None]
        assert len(terminal) == 1 and terminal[0].source is Source.WEBHOOK
        job = env.sim.jobs[task.external_id]
        assert job.webhook_url is None or "/hooks/" in job.webhook_url
        async with httpx.AsyncClient(timeout=5) as http:
            for output in done.outputs:
                image = await http.get(output.url)
                assert image.status_code == 200
                assert image.headers["content-type"] == "image/png"
                assert _check_png(image.content)[0] > 0


async def test_imagineapi_progress_arrives_by_account_webhook(tmp_path: Path) -> None:
    async with running(tmp_path) as env:
        task = await env.hub.submit("imagineapi", prompt="a fox in the snow")
        done = await env.wait(task.id)
        applied = [e for e in await env.hub.events(task.id) if e.seq is not None]
        progress = [e.progress for e in applied if e.status is Status.RUNNING]
        assert progress == sorted(progress) and len(progress) >= 2
        assert {o.role for o in done.outputs} == {"grid", "upscale"}
        assert env.sim.jobs[task.external_id or ""].ref == task.id  # ref = hub task id


async def test_submit_option_on_post_tasks(tmp_path: Path) -> None:
    async with running(tmp_path) as env:
        created = await env.api.post(
            "/v1/tasks",
            json={
                "provider": "midapi",
                "metadata": {"user": "42"},
                "submit": {"prompt": "a red bicycle", "options": {"speed": "turbo"}},
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["external_id"] and body["metadata"]["user"] == "42"
        assert env.sim.jobs[body["external_id"]].options["speed"] == "turbo"
        done = await env.api.get(f"/v1/tasks/{body['id']}", params={"wait": 10})
        assert done.json()["status"] == "succeeded"


async def test_submit_option_bad_input_is_422(tmp_path: Path) -> None:
    cases = [
        ("a prompt", "'submit' must be an object"),
        ({"prompt": ""}, "'submit.prompt'"),
        ({"prompt": "x", "options": []}, "'submit.options'"),
        ({"prompt": "x", "webhook_url": "http://x"}, "unknown 'submit' field"),
    ]
    async with running(tmp_path) as env:
        for submit, message in cases:
            body = {"provider": "linkrapi", "submit": submit}
            answer = await env.api.post("/v1/tasks", json=body)
            assert answer.status_code == 422
            assert message in answer.json()["error"]["message"]
        assert sum(env.sim.calls.values()) == 0


async def test_submit_to_provider_without_key_is_a_clear_400(tmp_path: Path) -> None:
    async with running(tmp_path, midapi_key=None) as env:
        answer = await env.api.post(
            "/v1/tasks", json={"provider": "midapi", "submit": {"prompt": "a cat"}}
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "provider_not_configured"
        assert "HUB_MIDAPI_KEY" in answer.json()["error"]["message"]
        generic = await env.api.post(
            "/v1/tasks", json={"provider": "generic", "submit": {"prompt": "a cat"}}
        )
        assert generic.status_code == 400
