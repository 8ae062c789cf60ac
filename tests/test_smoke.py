from __future__ import annotations

import httpx

from hub import Hub


async def test_register_webhook_wait(served: tuple[Hub, httpx.AsyncClient]) -> None:
    hub, client = served
    created = await client.post("/v1/tasks", json={"provider": "linkrapi"})
    assert created.status_code == 201, created.text
    task = created.json()
    hook = await client.post(
        task["callback_url"],
        json={"task_id": "lk-1", "status": "completed", "image_url": "https://cdn/x.png"},
    )
    assert hook.status_code == 200, hook.text
    done = await hub.wait(task["id"], timeout=5)
    assert done.status.value == "succeeded"
    assert done.external_id == "lk-1"
