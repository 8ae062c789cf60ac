"""The simulator speaks each supported provider's API: auth, envelopes, errors, limits, images."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.providers import get_adapter
from hub.simulator import SimConfig, Simulator, create_app
from hub.simulator.blocklist import Blocklist
from tests.sim_env import eventually, fast_config
from tests.support import serve

LKR = {"Authorization": "Bearer lkr_abc"}


@pytest.fixture
async def sim() -> AsyncIterator[tuple[Simulator, httpx.AsyncClient]]:
    simulator = Simulator(fast_config(step_s=0.05))
    async with (
        serve(create_app(simulator)) as url,
        httpx.AsyncClient(base_url=url, timeout=5) as http,
    ):
        yield simulator, http


def test_blocklist_normalises_with_nfkd_and_respects_word_boundaries() -> None:
    blocklist = Blocklist(["gore", "nude"])
    assert blocklist.match("\uff47\uff4f\uff52\uff45") == "gore"  # full-width letters
    assert blocklist.match("a GOR\u00c8 scene") == "gore"  # accent split off by NFKD
    assert blocklist.match("nude.") == "nude"
    assert blocklist.match("gorgeous ignore denuded") is None


async def test_linkrapi_errors(sim: tuple[Simulator, httpx.AsyncClient]) -> None:
    simulator, http = sim
    policy = await http.post("/api/v1/imagine", headers=LKR, json={"prompt": "\uff47ore"})
    assert policy.status_code == 400 and "content policy" in policy.json()["detail"]
    empty = await http.post("/api/v1/imagine", headers=LKR, json={"prompt": " "})
    assert empty.status_code == 400
    for headers in ({}, {"Authorization": "Bearer sk_other"}):
        answer = await http.post("/api/v1/imagine", headers=headers, json={"prompt": "x"})
        assert answer.status_code == 401 and answer.json() == {
            "detail": "Invalid or missing API key"
        }
    suspended = {"Authorization": "Bearer lkr_suspended"}
    answer = await http.post("/api/v1/imagine", headers=suspended, json={"prompt": "x"})
    assert answer.status_code == 403
    simulator.config.update({"force_429": 1, "retry_after_s": 2})
    limited = await http.post("/api/v1/imagine", headers=LKR, json={"prompt": "x"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    simulator.config.force_5xx = 1
    down = await http.post("/api/v1/imagine", headers=LKR, json={"prompt": "x"})
    assert down.status_code == 502
    broken = await http.post("/api/v1/imagine", headers=LKR, content=b"{nope")
    assert broken.status_code == 422
    missing = await http.get("/api/v1/fetch/nope", headers=LKR)
    assert missing.status_code == 404
    bad_action = await http.post("/api/v1/action", headers=LKR, json={"task_id": "x"})
    assert bad_action.status_code == 404
    assert not simulator.jobs


async def test_linkrapi_queues_past_three_fast_jobs(
    sim: tuple[Simulator, httpx.AsyncClient],
) -> None:
    simulator, http = sim
    ids = []
    for i in range(4):
        answer = await http.post("/api/v1/imagine", headers=LKR, json={"prompt": f"p{i}"})
        assert answer.json()["status"] == "SUCCESS"
        ids.append(answer.json()["task_id"])
    await eventually(lambda: sum(j.phase == "running" for j in simulator.jobs.values()) == 3)
    states = [(await http.get(f"/api/v1/fetch/{i}", headers=LKR)).json()["status"] for i in ids]
    assert sorted(states) == ["pending", "processing", "processing", "processing"]
    await eventually(lambda: all(j.phase.done for j in simulator.jobs.values()))
    done = (await http.get(f"/api/v1/fetch/{ids[0]}", headers=LKR)).json()
    update = get_adapter("linkrapi").parse_webhook(done)
    assert update.status is not None and update.status.value == "succeeded"
    assert {a.kind for a in update.actions} == {"upscale", "variation", "reroll"}
    upsample = await http.post(
        "/api/v1/action", headers=LKR, json={"task_id": ids[0], "action": "upsample9"}
    )
    assert upsample.status_code == 400


async def test_midjourney_api_envelope(sim: tuple[Simulator, httpx.AsyncClient]) -> None:
    simulator, http = sim
    path = "/midjourney/v1/submit-jobs"
    no_key = await http.post(path, json={"prompt": "x"})
    assert no_key.status_code == 401 and no_key.json()["status"] == 401
    key = {"API-KEY": "k1"}
    for body in ({"prompt": "x", "timeout": 100}, {"prompt": "x", "mode": "turbo"}, {}):
        answer = await http.post(path, headers=key, json=body)
        assert answer.status_code == 400 and answer.json()["data"] is None
    simulator.config.mjapi_max_jobs = 1
    first = await http.post(path, headers=key, json={"prompt": "x", "hookUrl": "http://h/1"})
    assert first.json()["status"] == 0
    second = await http.post(path, headers=key, json={"prompt": "y"})
    assert second.status_code == 200 and second.json()["status"] == 1002
    task_id = first.json()["data"]["taskId"]
    status = await http.post("/midjourney/v1/job-status", headers=key, json={"taskIds": [task_id]})
    assert status.json()["data"][0]["status"] == 0


async def test_imagineapi_directus_errors_and_account_webhooks() -> None:
    received: list[dict] = []

    async def hook(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({"ok": True})

    simulator = Simulator(fast_config())
    async with (
        serve(Starlette(routes=[Route("/account", hook, methods=["POST"])])) as hook_url,
        serve(create_app(simulator)) as url,
        httpx.AsyncClient(base_url=url, timeout=5) as http,
    ):
        simulator.config.imagineapi_webhooks["tok"] = hook_url + "/account"
        bad = await http.post("/items/images/", json={"prompt": "x"})
        assert bad.status_code == 401
        assert bad.json()["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"
        auth = {"Authorization": "Bearer tok"}
        created = await http.post("/items/images/", headers=auth, json={"prompt": "x", "ref": "r1"})
        item = created.json()["data"]
        assert item["status"] == "pending" and item["ref"] == "r1"
        await eventually(lambda: any(b["payload"]["status"] == "completed" for b in received))
        assert received[0]["event"] == "images.items.create"
        assert {b["event"] for b in received[1:]} == {"images.items.update"}
        unknown = await http.get("/items/images/nope", headers=auth)
        assert unknown.status_code == 403


async def test_midapi_envelope(sim: tuple[Simulator, httpx.AsyncClient]) -> None:
    _, http = sim
    key = {"Authorization": "Bearer m1"}
    for body in (
        {"prompt": "x"},
        {"taskType": "mj_img2img", "prompt": "x"},
        {"taskType": "mj_txt2img", "prompt": "x", "aspectRatio": "7:1"},
    ):
        answer = await http.post("/api/v1/mj/generate", headers=key, json=body)
        assert answer.status_code == 400 and answer.json()["code"] == 400
    ok = await http.post(
        "/api/v1/mj/generate", headers=key, json={"taskType": "mj_txt2img", "prompt": "x"}
    )
    task_id = ok.json()["data"]["taskId"]
    record = await http.get("/api/v1/mj/record-info", headers=key, params={"taskId": task_id})
    assert record.json()["data"]["successFlag"] == 0
    early = await http.post("/api/v1/mj/upscale", headers=key, json={"taskId": task_id, "index": 1})
    assert early.status_code == 400
    missing = await http.get("/api/v1/mj/record-info", headers=key, params={"taskId": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == 404


async def test_images_and_control_api(sim: tuple[Simulator, httpx.AsyncClient]) -> None:
    simulator, http = sim
    answer = await http.post("/api/v1/imagine", headers=LKR, json={"prompt": "x"})
    task_id = answer.json()["task_id"]
    assert (await http.get(f"/assets/{task_id}/grid.png")).status_code == 404  # not ready
    await eventually(lambda: simulator.jobs[task_id].phase.done)
    for name in ("grid.png", "0.png", "3.png"):
        image = await http.get(f"/assets/{task_id}/{name}")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert (await http.get(f"/assets/{task_id}/9.png")).status_code == 404
    refused = await http.patch("/_sim/config", json={"drop_rate": 2})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_config"
    changed = await http.patch("/_sim/config", json={"drop_rate": 0.5, "rate_limit": 2})
    assert changed.json()["drop_rate"] == 0.5
    jobs = (await http.get("/_sim/jobs")).json()["jobs"]
    assert [j["id"] for j in jobs] == [task_id]
    assert (await http.get("/nowhere")).json()["error"]["code"] == "http_error"


async def test_rate_limit_per_key() -> None:
    simulator = Simulator(SimConfig(rate_limit=2, rate_window_s=60))
    async with (
        serve(create_app(simulator)) as url,
        httpx.AsyncClient(base_url=url, timeout=5) as http,
    ):
        codes = [(await http.get("/api/v1/fetch/x", headers=LKR)).status_code for _ in range(3)]
        assert codes == [404, 404, 429]
        other = await http.get("/api/v1/fetch/x", headers={"Authorization": "Bearer lkr_other"})
        assert other.status_code == 404
