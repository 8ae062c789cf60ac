"""The hub mounted under a prefix inside a host Starlette app, with a combined lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from hub import Hub, Status
from tests.conftest import API_KEY, make_settings
from tests.support import free_port, serve


async def test_mounted_hub_completes_a_task(tmp_path: Path) -> None:
    port = free_port()
    hub = Hub(make_settings(tmp_path, public_url=f"http://127.0.0.1:{port}/hub"))
    host_started: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        host_started.append("host")
        async with hub.lifespan(app):
            yield

    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"app": "host"})

    host = Starlette(
        routes=[Route("/", home), Mount("/hub", app=hub.app)],
        lifespan=lifespan,
    )
    async with serve(host, port=port) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/")).json() == {"app": "host"}
        assert (await client.get("/hub/healthz")).json() == {"status": "ok"}
        task = await hub.register("midjourney-api")
        callback = hub.callback_url(task)
        assert callback.startswith(f"http://127.0.0.1:{port}/hub/hooks/midjourney-api/")
        answer = await client.post(
            callback, json={"status": 0, "data": {"taskId": "j1", "status": 1, "image": "g"}}
        )
        assert answer.status_code == 200
        done = await hub.wait(task.id, timeout=5)
        assert done.status is Status.SUCCEEDED
        # Over HTTP without HUB_PUBLIC_URL the mount prefix comes from the request.
        created = await client.post(
            "/hub/v1/tasks",
            json={"provider": "generic"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert created.json()["callback_url"].startswith(f"{url}/hub/hooks/generic/")
    assert host_started == ["host"]
    assert not hub.running


async def test_request_base_url_is_used_without_public_url(tmp_path: Path) -> None:
    hub = Hub(make_settings(tmp_path))
    host = Starlette(routes=[Mount("/callbacks", app=hub.app)], lifespan=hub.lifespan)
    async with serve(host) as url, httpx.AsyncClient(base_url=url) as client:
        created = await client.post(
            "/callbacks/v1/tasks",
            json={"provider": "generic"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        callback = created.json()["callback_url"]
        assert callback.startswith(f"{url}/callbacks/hooks/generic/")
        assert (await client.post(callback, json={"status": "succeeded"})).status_code == 200
