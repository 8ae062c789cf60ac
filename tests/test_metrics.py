"""/healthz, /readyz and /metrics on every store and bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from hub import Hub, Settings
from hub.metrics import HubMetrics
from tests.backends import metric_value, unique_name, until
from tests.support import serve

API_KEY = "metrics-key"
BACKENDS = ["sqlite+memory", "postgresql+redis", "postgresql+postgresql"]


@pytest.fixture(params=BACKENDS)
def backend_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite+memory":
        return f"sqlite:///{tmp_path / 'hub.db'}", "memory://"
    database = str(request.getfixturevalue("postgres_url"))
    if request.param == "postgresql+postgresql":  # LISTEN/NOTIFY as the bus
        return database, f"{database}&channel={unique_name('hub_t_')}"
    return database, str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def served(
    backend_urls: tuple[str, str], tmp_path: Path
) -> AsyncIterator[tuple[Hub, httpx.AsyncClient]]:
    database_url, broker_url = backend_urls
    hub = Hub(
        Settings(
            secret=("metrics-secret",),
            api_key=API_KEY,
            data_dir=tmp_path,
            database_url=database_url,
            broker_url=broker_url,
        )
    )
    async with (
        serve(hub.app) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
        ) as client,
    ):
        yield hub, client


async def test_health_and_readiness(served: tuple[Hub, httpx.AsyncClient]) -> None:
    _, client = served
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"store": "ok", "bus": "ok"}}


async def test_metrics_count_webhooks_duplicates_and_waiters(
    served: tuple[Hub, httpx.AsyncClient],
) -> None:
    hub, client = served
    task = (await client.post("/v1/tasks", json={"provider": "generic"})).json()
    body = {"status": "running", "progress": 30, "delivery_id": "d-1"}
    for _ in range(2):
        assert (await client.post(task["callback_url"], json=body)).status_code == 200
    waiting = asyncio.create_task(hub.wait(task["id"], timeout=10))

    async def scrape() -> str:
        response = await client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        return response.text

    async def one_waiter() -> bool:
        return metric_value(await scrape(), "hub_waiters") == 1

    await until(one_waiter, what="the waiter to show in hub_waiters")
    await client.post(task["callback_url"], json={"status": "succeeded"})
    await asyncio.wait_for(waiting, 10)
    text = await scrape()
    assert metric_value(text, "hub_waiters") == 0
    webhooks = "hub_webhooks_total"
    assert metric_value(text, webhooks, provider="generic", outcome="applied") == 2
    assert metric_value(text, webhooks, provider="generic", outcome="duplicate") == 1
    assert metric_value(text, "hub_duplicate_webhooks_total", provider="generic") == 1
    assert metric_value(text, "hub_delivered_seq") == await hub.store.last_seq()
    if hub.bus.crosses_processes:
        assert metric_value(text, "hub_bus_lag_seconds_count") >= 1


async def test_commit_batches_are_measured(served: tuple[Hub, httpx.AsyncClient]) -> None:
    _, client = served
    task = (await client.post("/v1/tasks", json={"provider": "generic"})).json()
    webhooks = [
        client.post(task["callback_url"], json={"status": "running", "delivery_id": f"d-{i}"})
        for i in range(40)
    ]
    assert {r.status_code for r in await asyncio.gather(*webhooks)} == {200}
    text = (await client.get("/metrics")).text
    # Every operation (the registration and 40 webhooks) was written in exactly one batch.
    assert metric_value(text, "hub_commit_batch_size_sum") == 41
    batches = metric_value(text, "hub_commit_batch_size_count")
    assert 1 <= batches <= 41
    assert metric_value(text, "hub_commit_seconds_count") == batches
    assert metric_value(text, "hub_commit_seconds_sum") > 0


async def test_open_streams_and_poll_calls(served: tuple[Hub, httpx.AsyncClient]) -> None:
    hub, client = served

    def streams(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            text = (await client.get("/metrics")).text
            return metric_value(text, "hub_open_streams") == count

        return check

    async with client.stream("GET", "/v1/events") as response:
        assert response.status_code == 200
        await until(streams(1), what="hub_open_streams to count the stream")
    await until(streams(0), what="hub_open_streams to drop when the stream ends")
    hub.metrics.poll_call("linkrapi", "ok")
    text = (await client.get("/metrics")).text
    assert metric_value(text, "hub_poll_calls_total", provider="linkrapi", outcome="ok") == 1


def test_each_hub_has_its_own_registry() -> None:
    first, second = HubMetrics(), HubMetrics()
    first.webhook("generic", "applied")
    assert metric_value(first.render().decode(), "hub_webhooks_total") == 1
    assert metric_value(second.render().decode(), "hub_webhooks_total") == 0


async def test_refused_webhooks_are_counted_without_junk_labels(
    served: tuple[Hub, httpx.AsyncClient],
) -> None:
    _, client = served
    task = (await client.post("/v1/tasks", json={"provider": "generic"})).json()
    forged = task["callback_url"][:-4] + "AAAA"
    assert (await client.post(forged, json={"status": "running"})).status_code == 401
    junk = await client.post("/hooks/no-such-provider/token", json={"status": "running"})
    assert junk.status_code == 404
    text = (await client.get("/metrics")).text
    webhooks = "hub_webhooks_total"
    assert metric_value(text, webhooks, provider="generic", outcome="invalid_token") == 1
    assert metric_value(text, webhooks, provider="unknown", outcome="unknown_provider") == 1
    assert "no-such-provider" not in text
