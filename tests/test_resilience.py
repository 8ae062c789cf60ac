"""Restarting Redis and PostgreSQL under running hubs: nothing is lost, /readyz tells the truth.

These restart the machine's shared services, so each outage is kept to a few seconds and the
service is always started again in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub import Hub, Settings
from hub.errors import StoreUnavailable
from hub.models import Event, Status, Update
from hub.store.postgres import PostgresStore
from tests.backends import (
    can_restart_services,
    in_ci,
    metric_value,
    postgres_ctl,
    start_redis,
    stop_redis,
    unique_name,
    until,
)
from tests.support import serve

API_KEY = "resilience-key"

# Under CI the services are this machine's own: never skip there, let a missing one fail.
needs_service_control = pytest.mark.skipif(
    not (can_restart_services() or in_ci()),
    reason="this machine does not run PostgreSQL and Redis itself",
)


def settings(tmp_path: Path, name: str, database_url: str, broker_url: str) -> Settings:
    return Settings(
        secret=("resilience-secret",),
        api_key=API_KEY,
        data_dir=tmp_path / name,
        database_url=database_url,
        broker_url=broker_url,
    )


@contextlib.asynccontextmanager
async def running(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    """``hub`` behind a real uvicorn, and a client for it."""
    async with serve(hub.app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


async def readiness(client: httpx.AsyncClient) -> int:
    return (await client.get("/readyz")).status_code


async def until_ready(client: httpx.AsyncClient, expected: int, what: str) -> None:
    async def check() -> bool:
        return await readiness(client) == expected

    await until(check, timeout=15, what=what)


class Seen:
    """Every event a hub's dispatcher hands its listeners (what SSE streams and waiters get)."""

    def __init__(self, hub: Hub) -> None:
        self.events: list[Event] = []
        hub.dispatcher.add_listener(self.events.append)

    def seqs(self) -> list[int]:
        return [e.seq or 0 for e in self.events]


@needs_service_control
async def test_redis_restart_mid_stream_loses_nothing(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    a = Hub(settings(tmp_path, "a", postgres_url, redis_url))
    b = Hub(settings(tmp_path, "b", postgres_url, redis_url))
    async with running(a) as client_a, running(b) as client_b:
        seen = Seen(b)
        task = await a.register("generic")

        async def progress(step: int) -> None:
            update = Update(status=Status.RUNNING, progress=step)
            result = await a.receive("generic", update, task_id=task.id)
            assert result.events[0].seq is not None

        for step in range(1, 6):
            await progress(step)
        try:
            stop_redis()
            await until_ready(client_a, 503, "A's /readyz to fail while Redis is down")
            await until_ready(client_b, 503, "B's /readyz to fail while Redis is down")
            body = (await client_b.get("/readyz")).json()
            assert body["checks"]["store"] == "ok" and body["checks"]["bus"].startswith("down")
            for step in range(6, 11):  # webhooks still commit: the store is the truth
                await progress(step)
        finally:
            start_redis()
        await until_ready(client_a, 200, "A's /readyz to recover after Redis is back")
        await until_ready(client_b, 200, "B's /readyz to recover after Redis is back")
        for step in range(11, 16):
            await progress(step)
        await a.receive("generic", Update(status=Status.SUCCEEDED), task_id=task.id)

        last = await a.store.last_seq()

        async def caught_up() -> bool:
            return b.dispatcher.cursor >= last

        await until(caught_up, what="B to deliver every committed event")
        created = (await b.store.task_events(task.id))[0].seq
        assert seen.seqs() == list(range(created or 0, last + 1))  # in order, no gap, no dup
        assert [e.progress for e in seen.events if e.progress and e.progress < 100] == list(
            range(1, 16)
        )
        assert (await b.wait(task.id, timeout=5)).status is Status.SUCCEEDED
        metrics = (await client_b.get("/metrics")).text
        assert metric_value(metrics, "hub_bus_reconnects_total") >= 1


@needs_service_control
@pytest.mark.parametrize("bus", ["redis", "postgresql"])
async def test_postgres_restart_gives_503_then_recovers(
    bus: str, postgres_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if bus == "redis":
        broker = str(request.getfixturevalue("redis_url"))
    else:  # LISTEN/NOTIFY: the restart takes the bus down too
        broker = f"{postgres_url}&channel={unique_name('hub_t_')}"
    hub = Hub(settings(tmp_path, "a", postgres_url, broker))
    async with running(hub) as client:
        client.headers["Authorization"] = f"Bearer {API_KEY}"
        created = (await client.post("/v1/tasks", json={"provider": "generic"})).json()
        hook = created["callback_url"]
        assert (await client.post(hook, json={"status": "running"})).status_code == 200
        try:
            await asyncio.to_thread(postgres_ctl, "stop")
            await until_ready(client, 503, "/readyz to fail while PostgreSQL is down")
            refused = await client.post(hook, json={"status": "running", "progress": 50})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "store_unavailable"
        finally:
            await asyncio.to_thread(postgres_ctl, "start")
        await until_ready(client, 200, "/readyz to recover after PostgreSQL is back")

        async def accepted() -> bool:
            response = await client.post(hook, json={"status": "succeeded"})
            return response.status_code == 200

        await until(accepted, what="webhooks to be accepted again, without a hub restart")
        done = await hub.wait(created["id"], timeout=10)
        assert done.status is Status.SUCCEEDED
        if bus == "postgresql":
            metrics = (await client.get("/metrics")).text
            assert metric_value(metrics, "hub_bus_reconnects_total") >= 1


async def test_an_unreachable_postgres_is_store_unavailable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", start_timeout=0)
    with pytest.raises(StoreUnavailable, match="not reachable"):
        await store.start()
