"""Follow-ups (upscale, variation, reroll) as child tasks with their own callback URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import HubClient, Source, Status
from hub.client import HubHTTPError
from hub.providers.client import ActionUnsupported
from hub.submit import ActionUnavailable
from tests.sim_env import API_KEY, fast_config, running


async def test_linkrapi_upscale_child_task_completes(tmp_path: Path) -> None:
    async with running(tmp_path) as env:
        parent = await env.hub.submit("linkrapi", prompt="a koi pond")
        await env.wait(parent.id)
        child = await env.hub.action(parent.id, "upscale", index=2)
        assert child.parent_id == parent.id and child.id != parent.id
        assert child.external_id and child.external_id != parent.external_id
        job = env.sim.jobs[child.external_id]
        assert job.action == "upsample2" and job.parent_id == parent.external_id
        assert job.webhook_url and child.id not in (parent.id,)
        done = await env.wait(child.id)
        assert done.status is Status.SUCCEEDED
        assert [(o.role, o.index) for o in done.outputs] == [("upscale", 1)]
        assert done.metadata["action"] == "upscale" and done.metadata["index"] == 2
        terminal = [e for e in await env.hub.events(child.id) if e.status is Status.SUCCEEDED]
        assert terminal[0].source is Source.WEBHOOK


@pytest.mark.parametrize(
    ("kind", "index", "name"), [("variation", 3, "variation3"), ("reroll", None, "reroll")]
)
async def test_linkrapi_variation_and_reroll(
    tmp_path: Path, kind: str, index: int | None, name: str
) -> None:
    async with running(tmp_path) as env:
        parent = await env.hub.submit("linkrapi", prompt="a koi pond")
        await env.wait(parent.id)
        child = await env.hub.action(parent.id, kind, index=index)
        assert env.sim.jobs[child.external_id or ""].action == name
        done = await env.wait(child.id)
        assert done.status is Status.SUCCEEDED and any(o.role == "grid" for o in done.outputs)


async def test_midapi_upscale_over_http(tmp_path: Path) -> None:
    async with running(tmp_path) as env:
        parent = await env.hub.submit("midapi", prompt="a koi pond")
        await env.wait(parent.id)
        answer = await env.api.post(
            f"/v1/tasks/{parent.id}/actions", json={"action": "upscale", "index": 4}
        )
        assert answer.status_code == 201, answer.text
        child = answer.json()
        assert child["parent_id"] == parent.id
        done = await env.api.get(f"/v1/tasks/{child['id']}", params={"wait": 10})
        assert done.json()["status"] == "succeeded"
        assert len(done.json()["outputs"]) == 1
        children = await env.api.get("/v1/tasks", params={"parent_id": parent.id})
        assert [t["id"] for t in children.json()["tasks"]] == [child["id"]]


async def test_actions_the_provider_lacks_are_refused(tmp_path: Path) -> None:
    async with running(tmp_path) as env:
        parent = await env.hub.submit("imagineapi", prompt="a koi pond")
        await env.wait(parent.id)
        with pytest.raises(ActionUnsupported):
            await env.hub.action(parent.id, "upscale", index=1)
        answer = await env.api.post(f"/v1/tasks/{parent.id}/actions", json={"action": "reroll"})
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "action_unsupported"


async def test_action_needs_a_finished_parent_and_a_valid_index(tmp_path: Path) -> None:
    async with running(tmp_path, fast_config(step_s=0.5)) as env:
        parent = await env.hub.submit("linkrapi", prompt="a koi pond")
        with pytest.raises(ActionUnavailable):
            await env.hub.action(parent.id, "upscale", index=1)
        for body in ({"action": "upscale", "index": 5}, {"action": "zoom"}, {"index": 1}):
            answer = await env.api.post(f"/v1/tasks/{parent.id}/actions", json=body)
            assert answer.status_code == 422, body
        missing = await env.api.post("/v1/tasks/tsk_nope/actions", json={"action": "reroll"})
        assert missing.status_code == 404
        assert env.sim.calls["linkrapi.action"] == 0


async def test_hub_client_action_starts_a_child_and_waits_for_it(tmp_path: Path) -> None:
    async with running(tmp_path) as env, HubClient(env.hub_url, api_key=API_KEY) as client:
        parent = await env.hub.submit("linkrapi", prompt="a koi pond")
        await env.wait(parent.id)
        child = await client.action(parent.id, "upscale", index=1)
        assert child["parent_id"] == parent.id and child["external_id"]
        done = await client.wait(child["id"], timeout=10)
        assert done.status is Status.SUCCEEDED and done.outputs[0].role == "upscale"
        with pytest.raises(HubHTTPError) as refused:
            await client.action(parent.id, "upscale", index=9)
        assert refused.value.status_code == 422
