"""kill -9 while webhooks are in flight: every webhook answered 2xx is in the database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx

from tests.conftest import API_KEY
from tests.support import HubProcess


async def test_sigkill_loses_no_acknowledged_webhook(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    env = {
        "HUB_SECRET": "crash-secret",
        "HUB_API_KEY": API_KEY,
        "HUB_DATABASE_URL": f"sqlite:///{db}",
        "HUB_DATA_DIR": str(tmp_path),
    }
    server = HubProcess(env)
    await asyncio.to_thread(server.start)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    acknowledged: dict[int, str] = {}
    sent = 0
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=5) as client:
            callbacks = []
            for _ in range(20):
                created = await client.post("/v1/tasks", json={"provider": "generic"})
                callbacks.append((created.json()["id"], created.json()["callback_url"]))

            async def post_forever(task_id: str, url: str) -> None:
                nonlocal sent
                for n in range(10_000):
                    sent += 1
                    body = {"status": "running", "progress": n % 100, "delivery_id": f"{n}"}
                    try:
                        answer = await client.post(url, json=body)
                    except httpx.TransportError:
                        return  # the server died under us: this one was never acknowledged
                    if answer.status_code == 200:
                        acknowledged[answer.json()["event_id"]] = task_id

            load = [asyncio.create_task(post_forever(t, u)) for t, u in callbacks]
            async with asyncio.timeout(20):
                while len(acknowledged) < 300:
                    await asyncio.sleep(0.01)
            server.kill()
            async with asyncio.timeout(20):
                await asyncio.gather(*load)
    finally:
        server.kill()

    await asyncio.to_thread(server.start)  # recovery runs on the same file
    server.stop()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        stored = dict(conn.execute("SELECT id, task_id FROM events").fetchall())
    lost = [i for i, task_id in acknowledged.items() if stored.get(i) != task_id]
    print(f"sent={sent} acknowledged={len(acknowledged)} stored={len(stored)} lost={len(lost)}")
    assert len(acknowledged) >= 300
    assert lost == []
