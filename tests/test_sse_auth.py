"""Task streams: subscriber tokens open one task's stream and nothing else, and vice versa."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.test_sse_helpers import AUTH, served_hub, stream


def _token(events_url: str) -> str:
    return parse_qs(urlsplit(events_url).query)["token"][0]


async def test_events_url_streams_one_task_without_the_api_key(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        task = await s.task(metadata={"user": "42"})
        async with stream(task["events_url"]) as reader:  # no API key: the token is the key
            assert reader.response.status_code == 200
            state = await reader.next()
            assert state is not None and state.event == "state"
            assert state.data["id"] == task["id"] and state.data["status"] == "queued"
            await s.hook(task, status="running", progress=50)
            await s.hook(task, status="succeeded")
            rest = await reader.rest()
        assert [m.data["type"] for m in rest] == ["task.progress", "task.succeeded"]
        bearer = {"Authorization": f"Bearer {_token(task['events_url'])}"}
        async with stream(f"{s.url}/v1/tasks/{task['id']}/events", bearer) as reader:
            assert reader.response.status_code == 200
            state = await reader.next()
            assert state is not None and state.data["status"] == "succeeded"
            assert await reader.rest() == []  # a finished task's stream ends after its state


async def test_tokens_are_scoped_to_their_task_and_purpose(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        a, b = await s.task(), await s.task()
        subscriber = _token(a["events_url"])
        callback = a["callback_url"].rsplit("/", 1)[1]
        cases = [
            (f"/v1/tasks/{b['id']}/events?token={subscriber}", 403),  # another task
            (f"/v1/tasks/{a['id']}/events?token={callback}", 401),  # a callback token
            (f"/v1/tasks/{a['id']}/events?token=forged.token.x", 401),
            (f"/v1/tasks/{a['id']}/events", 401),  # no token at all
        ]
        for path, status in cases:
            response = await s.api.get(path, headers={"Authorization": ""})
            assert response.status_code == status, path
            assert response.json()["error"]["code"] in {
                "invalid_token",
                "token_scope",
                "unauthorized",
            }
        # ... and the reverse: a subscriber token is no callback token, and no API key.
        hook = await s.api.post(f"/hooks/generic/{subscriber}", json={"status": "running"})
        assert hook.status_code == 401
        everything = await s.api.get(
            "/v1/events", headers={"Authorization": f"Bearer {subscriber}"}
        )
        assert everything.status_code == 401
        # Nothing above changed the task.
        assert (await s.api.get(f"/v1/tasks/{a['id']}")).json()["status"] == "queued"


async def test_the_api_key_opens_any_task_stream(tmp_path: Path) -> None:
    async with served_hub(tmp_path) as s:
        task = await s.task()
        async with stream(f"{s.url}/v1/tasks/{task['id']}/events", AUTH) as reader:
            assert reader.response.status_code == 200
            state = await reader.next()
            assert state is not None and state.event == "state"


async def test_cors_origins_are_configurable(tmp_path: Path) -> None:
    origin = "https://app.example"
    async with served_hub(tmp_path, cors_origins=f"{origin}, https://other.example") as s:
        task = await s.task()
        async with stream(task["events_url"], {"Origin": origin}) as reader:
            assert reader.response.headers["access-control-allow-origin"] == origin
        async with stream(task["events_url"], {"Origin": "https://evil.example"}) as reader:
            assert "access-control-allow-origin" not in reader.response.headers
        preflight = await s.api.options(
            f"/v1/tasks/{task['id']}/events",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "last-event-id",
            },
        )
        assert preflight.status_code == 200
        assert "last-event-id" in preflight.headers["access-control-allow-headers"].lower()
    async with served_hub(tmp_path / "plain") as s:  # no origins configured: no CORS headers
        task = await s.task()
        async with stream(task["events_url"], {"Origin": origin}) as reader:
            assert "access-control-allow-origin" not in reader.response.headers
