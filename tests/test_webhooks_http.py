"""Webhooks over real HTTP (uvicorn on loopback) through to the normalized task state."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from hub import Hub, Settings
from hub.signing import CALLBACK, Signer
from tests.test_adapters import IMAGINE_COMPLETED

Served = tuple[Hub, httpx.AsyncClient]


class _LongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 400 * 86_400


def expired_callback_token(settings: Settings, task_id: str, provider: str) -> str:
    """A genuine callback token signed long before the hub's token lifetime."""
    serializer = URLSafeTimedSerializer(
        list(reversed(settings.secret)),
        salt=CALLBACK,
        signer=_LongAgo,
        signer_kwargs={"digest_method": hashlib.sha256},
    )
    return str(serializer.dumps([task_id, provider]))


async def register(client: httpx.AsyncClient, provider: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/tasks", json={"provider": provider, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def task_state(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_linkrapi_lifecycle_with_duplicate(served: Served) -> None:
    _, client = served
    task = await register(client, "linkrapi")
    url = task["callback_url"]
    bodies = [
        {"task_id": "lk-1", "status": "pending", "progress": 0},
        {"task_id": "lk-1", "status": "processing", "progress": 45},
        {"task_id": "lk-1", "status": "completed", "progress": 100, "image_url": "g.png"},
        {"task_id": "lk-1", "status": "completed", "progress": 100, "image_url": "g.png"},
    ]
    answers = [await client.post(url, json=b) for b in bodies]
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["disposition"] for a in answers] == [
        "stale",  # pending: the task is already queued
        "applied",
        "applied",
        "duplicate",
    ]
    state = await task_state(client, task["id"])
    assert state["status"] == "succeeded"
    assert state["external_id"] == "lk-1"
    assert state["outputs"] == [{"url": "g.png", "role": "grid", "index": None}]
    assert {a["kind"] for a in state["actions"]} == {"upscale", "variation", "reroll"}
    assert [e["disposition"] for e in state["events"]] == [
        "applied",
        "stale",
        "applied",
        "applied",
        "duplicate",
    ]
    assert state["events"][-1]["seq"] is None


async def test_midjourney_api_failure(served: Served) -> None:
    _, client = served
    task = await register(client, "midjourney-api")
    answer = await client.post(
        task["callback_url"], json={"status": 0, "data": {"taskId": "mj-1", "status": 2}}
    )
    assert answer.status_code == 200
    state = await task_state(client, task["id"])
    assert state["status"] == "failed"
    assert state["error"]["category"] == "unknown"


async def test_midapi_moderation_failure(served: Served) -> None:
    _, client = served
    task = await register(client, "midapi")
    await client.post(
        task["callback_url"],
        json={"code": 400, "msg": "Your prompt was flagged as sensitive", "data": {"taskId": "m"}},
    )
    state = await task_state(client, task["id"])
    assert state["status"] == "failed"
    assert state["error"]["category"] == "moderation"


async def test_imagineapi_account_hook(served: Served) -> None:
    _, client = served
    task = await register(client, "imagineapi")
    hook = (await client.get("/v1/providers/imagineapi/account-hook")).json()["url"]
    created = {**IMAGINE_COMPLETED, "status": "pending", "ref": task["id"], "url": None}
    assert (
        await client.post(hook, json={"event": "images.items.create", "payload": created})
    ).json()["disposition"] == "stale"
    done = {**IMAGINE_COMPLETED, "ref": task["id"]}
    answer = await client.post(hook, json={"event": "images.items.update", "payload": done})
    assert answer.json()["disposition"] == "applied"
    state = await task_state(client, task["id"])
    assert state["status"] == "succeeded"
    assert state["external_id"] == IMAGINE_COMPLETED["id"]
    assert len(state["outputs"]) == 5
    # Only account-level providers have an account hook.
    refused = await client.get("/v1/providers/linkrapi/account-hook")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "not_account_level"


async def test_orphan_through_account_hook_attaches_on_bind(served: Served) -> None:
    _, client = served
    hook = (await client.get("/v1/providers/imagineapi/account-hook")).json()["url"]
    body = {"event": "images.items.update", "payload": {**IMAGINE_COMPLETED, "id": "early-1"}}
    assert (await client.post(hook, json=body)).json()["disposition"] == "orphan"
    task = await register(client, "imagineapi")
    bound = await client.post(f"/v1/tasks/{task['id']}/bind", json={"external_id": "early-1"})
    assert bound.status_code == 200
    assert bound.json()["status"] == "succeeded"


async def test_long_poll_returns_when_the_webhook_lands(served: Served) -> None:
    hub, client = served
    task = await register(client, "generic")
    import asyncio

    poll = asyncio.create_task(client.get(f"/v1/tasks/{task['id']}?wait=5"))
    await asyncio.sleep(0.1)
    assert not poll.done()
    await client.post(task["callback_url"], json={"status": "succeeded"})
    response = await asyncio.wait_for(poll, 5)
    assert response.json()["status"] == "succeeded"
    # A long poll that runs out answers 200 with the current state.
    other = await register(client, "generic")
    timed_out = await client.get(f"/v1/tasks/{other['id']}?wait=0.2")
    assert timed_out.status_code == 200 and timed_out.json()["status"] == "queued"
    assert len(hub.waiters) == 0


async def test_list_with_filters_and_cursor(served: Served) -> None:
    _, client = served
    ids = [(await register(client, "generic"))["id"] for _ in range(5)]
    await register(client, "linkrapi")
    first = (await client.get("/v1/tasks", params={"provider": "generic", "limit": 3})).json()
    assert [t["id"] for t in first["tasks"]] == ids[::-1][:3]
    second = (
        await client.get(
            "/v1/tasks", params={"provider": "generic", "limit": 3, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [t["id"] for t in second["tasks"]] == ids[::-1][3:]
    assert second["next_cursor"] is None
    queued = (await client.get("/v1/tasks", params={"status": "succeeded"})).json()
    assert queued["tasks"] == []


async def test_refused_tokens_change_nothing(served: Served, settings: Settings) -> None:
    hub, client = served
    task = await register(client, "linkrapi")
    url: str = task["callback_url"]
    token = url.rsplit("/", 1)[1]
    other = await register(client, "midapi")
    forged = Signer(("not-the-secret",), callback_max_age=60, subscriber_max_age=60)
    body = {"task_id": "x", "status": "completed", "image_url": "evil.png"}
    cases = {
        "altered": url[:-2] + ("AA" if not url.endswith("AA") else "BB"),
        "forged": url.replace(token, forged.callback_token(task["id"], "linkrapi")),
        "wrong provider": url.replace("/linkrapi/", "/midapi/"),
        "other task's provider": other["callback_url"].replace("/midapi/", "/linkrapi/"),
        "expired": url.replace(token, expired_callback_token(settings, task["id"], "linkrapi")),
        "subscriber token": url.replace(token, hub.signer.subscriber_token(task["id"])),
        "garbage": url.replace(token, "not-a-token"),
    }
    for name, bad_url in cases.items():
        answer = await client.post(bad_url, json=body)
        assert answer.status_code in (401, 403), (name, answer.status_code)
        assert answer.json()["error"]["code"] in ("invalid_token", "token_expired", "token_scope")
    state = await task_state(client, task["id"])
    assert state["status"] == "queued"
    assert len(state["events"]) == 1


async def test_api_requires_the_key(served: Served) -> None:
    _, client = served
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        answer = await client.get("/v1/tasks", headers={**headers} or {"Authorization": ""})
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "invalid_json"),
        (b"[1, 2]", {"content-type": "application/json"}, 422, "invalid_payload"),
        (b'"text"', {"content-type": "application/json"}, 422, "invalid_payload"),
        (b"\xff\xfe{}", {"content-type": "application/json"}, 400, "invalid_utf8"),
        (b"{}", {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (b"{}", {}, 415, "unsupported_media_type"),
        (b'{"task_id": "x"}', {"content-type": "application/json"}, 422, "invalid_payload"),
        (b'{"status": 5}', {"content-type": "application/json"}, 422, "invalid_payload"),
    ],
)
async def test_bad_webhook_bodies_get_4xx_and_store_nothing(
    served: Served, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    _, client = served
    task = await register(client, "linkrapi")
    answer = await client.post(task["callback_url"], content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    assert len((await task_state(client, task["id"]))["events"]) == 1


async def test_body_over_the_limit_is_413(served: Served, settings: Settings) -> None:
    _, client = served
    task = await register(client, "generic")
    big = b'{"status": "running", "pad": "' + b"x" * settings.max_body_bytes + b'"}'
    answer = await client.post(
        task["callback_url"], content=big, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"

    async def chunks():  # no Content-Length: the limit must hold while streaming too
        for _ in range(20):
            yield b"x" * (settings.max_body_bytes // 10)

    streamed = await client.post(
        task["callback_url"], content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert len((await task_state(client, task["id"]))["events"]) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/tasks", {"provider": "nope"}, 404, "unknown_provider"),
        ("POST", "/v1/tasks", {}, 422, "invalid_payload"),
        ("POST", "/v1/tasks", {"provider": 5}, 422, "invalid_payload"),
        ("POST", "/v1/tasks", {"provider": "generic", "metadata": []}, 422, "invalid_payload"),
        ("POST", "/v1/tasks", {"provider": "generic", "deadline_s": -1}, 422, "invalid_payload"),
        ("GET", "/v1/tasks/tsk_missing", None, 404, "task_not_found"),
        ("GET", "/v1/tasks?limit=0", None, 400, "bad_request"),
        ("GET", "/v1/tasks?status=weird", None, 400, "bad_request"),
        ("GET", "/v1/tasks/tsk_missing?wait=abc", None, 400, "bad_request"),
        ("POST", "/v1/tasks/tsk_missing/bind", {"external_id": "x"}, 404, "task_not_found"),
        ("POST", "/v1/tasks/tsk_missing/bind", {}, 422, "invalid_payload"),
        ("DELETE", "/v1/tasks", None, 405, "method_not_allowed"),
        ("GET", "/hooks/linkrapi/abc", None, 405, "method_not_allowed"),
        ("POST", "/hooks/nope/abc", {"status": "x"}, 404, "unknown_provider"),
        ("GET", "/nowhere", None, 404, "not_found"),
    ],
)
async def test_api_mistakes_get_json_4xx(
    served: Served, method: str, path: str, body: Any, status: int, code: str
) -> None:
    _, client = served
    answer = await client.request(method, path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
