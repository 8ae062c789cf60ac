"""Three hub processes (uvicorn) sharing PostgreSQL and Redis, as replicas behind a balancer."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.models import Status, Task
from hub.store.base import CreateTask
from hub.store.postgres import PostgresStore
from tests.backends import metric_value, until
from tests.support import ROOT, HubProcess

API_KEY = "replica-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
async def cluster(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[list[HubProcess]]:
    """Replicas A, B and C on one database and one bus, started at the same moment (so their
    migrations race, and the advisory lock must sort it out)."""
    env = {
        "HUB_DATABASE_URL": postgres_url,
        "HUB_BROKER_URL": redis_url,
        "HUB_SECRET": "replica-test-secret",
        "HUB_API_KEY": API_KEY,
    }
    replicas = [HubProcess({**env, "HUB_DATA_DIR": str(tmp_path / name)}) for name in "abc"]
    try:
        await asyncio.gather(*(asyncio.to_thread(r.start, 30.0) for r in replicas))
        yield replicas
    finally:
        await asyncio.gather(*(asyncio.to_thread(r.stop) for r in replicas))


async def metric(http: httpx.AsyncClient, replica: HubProcess, name: str) -> float:
    response = await http.get(replica.url + "/metrics")
    return metric_value(response.text, name)


async def test_webhook_on_a_resolves_a_wait_on_c(cluster: list[HubProcess]) -> None:
    a, _b, c = cluster
    async with httpx.AsyncClient(headers=AUTH, timeout=30) as http:
        created = await http.post(a.url + "/v1/tasks", json={"provider": "generic"})
        task = created.json()
        waiting = asyncio.create_task(http.get(f"{c.url}/v1/tasks/{task['id']}?wait=20"))

        async def c_is_waiting() -> bool:
            return await metric(http, c, "hub_waiters") >= 1

        await until(c_is_waiting, what="the long-poll on C to register its waiter")
        hook = await http.post(
            task["callback_url"],
            json={"status": "succeeded", "outputs": [{"url": "https://cdn.example/1.png"}]},
        )
        assert hook.status_code == 200 and hook.json()["disposition"] == "applied"
        done = await asyncio.wait_for(waiting, 25)
        assert done.status_code == 200
        assert done.json()["status"] == "succeeded"
        assert done.json()["outputs"][0]["url"] == "https://cdn.example/1.png"
        # It crossed over the bus, not only through C's periodic read of the store.
        assert await metric(http, c, "hub_bus_lag_seconds_count") >= 1
        assert await metric(http, a, "hub_webhooks_total") == 1


_LEASE_WORKER = """
import asyncio, json, sys, time
from hub.store.postgres import PostgresStore

async def main(url, owner, seconds):
    store = PostgresStore(url, max_size=2)
    await store.start()
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        for claim in await store.claim_polls(owner, time.time(), lease_s=10, limit=3):
            start = time.time()
            await asyncio.sleep(0.02)  # the poll itself
            end = time.time()
            print(json.dumps([claim.task.id, owner, start, end]), flush=True)
            await store.release_poll(claim.task.id, owner, time.time(), claim.attempts + 1)
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


async def test_no_task_is_polled_by_two_replicas_at_once(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, max_size=2)
    await store.start()
    try:
        now = time.time()
        tasks = [
            Task(
                id=f"tsk_{i:04d}",
                provider="generic",
                status=Status.QUEUED,
                created_at=now,
                updated_at=now,
            )
            for i in range(12)
        ]
        await store.write([CreateTask(t, next_poll_at=now) for t in tasks])
    finally:
        await store.close()

    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _LEASE_WORKER,
            postgres_url,
            owner,
            "2.5",
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        for owner in ("a", "b", "c")
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 30)
    assert all(w.returncode == 0 for w in workers)
    polls = [json.loads(line) for out, _ in outputs for line in out.decode().splitlines()]
    by_task: dict[str, list[tuple[float, float, str]]] = {}
    for task_id, owner, start, end in polls:
        by_task.setdefault(task_id, []).append((start, end, owner))
    assert set(by_task) == {t.id for t in tasks}
    assert len({owner for _, owner, _, _ in polls}) == 3, "every replica should get work"
    for task_id, spans in by_task.items():
        spans.sort()
        for (_, end, owner), (start, _, next_owner) in itertools.pairwise(spans):
            assert start >= end, f"{task_id} polled by {owner} and {next_owner} at once"
