"""Three hub processes (uvicorn) sharing PostgreSQL and Redis, as replicas behind a balancer."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.models import Status, Task
from hub.store.base import CreateTask
from hub.store.postgres import PostgresStore
from tests.backends import metric_value, until
from tests.support import ROOT, HubProcess, serve

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


@pytest.fixture
async def subscribe() -> AsyncIterator[Callable[..., Subscriber]]:
    """Opens SSE subscribers and makes sure every one is closed, whatever the test did."""
    opened: list[Subscriber] = []

    def open_one(replica: HubProcess, last_event_id: int | None = None) -> Subscriber:
        opened.append(Subscriber(replica, last_event_id))
        return opened[-1]

    yield open_one
    for sub in opened:
        await sub.close()


async def metric(http: httpx.AsyncClient, replica: HubProcess, name: str) -> float:
    response = await http.get(replica.url + "/metrics")
    return metric_value(response.text, name)


class Subscriber:
    """An SSE client of ``GET /v1/events`` on one replica, collecting ``(seq, event)``."""

    def __init__(self, replica: HubProcess, last_event_id: int | None = None) -> None:
        self.replica = replica
        self.events: list[tuple[int, dict[str, Any]]] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        headers = dict(AUTH)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(10, read=60))
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async with aconnect_sse(self._client, "GET", self.replica.url + "/v1/events") as src:
                async for message in src.aiter_sse():
                    if message.id and message.event == "message":
                        self.events.append((int(message.id), json.loads(message.data)))
                        self._changed.set()
        except (httpx.HTTPError, OSError) as exc:  # the replica died: what a browser sees
            self.error = exc
            self._changed.set()

    def seqs(self) -> list[int]:
        return [seq for seq, _ in self.events]

    async def wait_for(self, task_id: str, event_type: str, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while not any(
                e["task_id"] == task_id and e["type"] == event_type for _, e in self.events
            ):
                if self.error is not None:
                    raise AssertionError(f"stream on {self.replica.url} broke: {self.error!r}")
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        """Stop reading (idempotent)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._client.aclose()


async def streaming(http: httpx.AsyncClient, *subscribers: Subscriber) -> None:
    """Wait until every subscriber's stream is open on its replica (seen in /metrics)."""
    for sub in subscribers:

        async def is_open(sub: Subscriber = sub) -> bool:
            return await metric(http, sub.replica, "hub_open_streams") >= 1

        await until(is_open, what=f"the stream on {sub.replica.url} to open")


async def post_progress(http: httpx.AsyncClient, hook: str, progress: int) -> None:
    response = await http.post(hook, json={"status": "running", "progress": progress})
    assert response.status_code == 200 and response.json()["disposition"] == "applied"


async def test_webhook_on_a_reaches_streams_on_b_and_c_and_a_wait_on_c(
    cluster: list[HubProcess], subscribe: Callable[..., Subscriber]
) -> None:
    a, b, c = cluster
    on_b, on_c = subscribe(b), subscribe(c)
    async with httpx.AsyncClient(headers=AUTH, timeout=30) as http:
        await streaming(http, on_b, on_c)
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
        for sub in (on_b, on_c):
            await sub.wait_for(task["id"], "task.succeeded")
            mine = [e["type"] for _, e in sub.events if e["task_id"] == task["id"]]
            assert mine == ["task.created", "task.succeeded"]
        # It crossed over the bus, not only through C's periodic read of the store.
        assert await metric(http, c, "hub_bus_lag_seconds_count") >= 1
        assert await metric(http, a, "hub_webhooks_total") == 1


async def test_a_subscriber_whose_replica_is_killed_resumes_on_another(
    cluster: list[HubProcess], subscribe: Callable[..., Subscriber]
) -> None:
    a, b, c = cluster
    first = subscribe(b)
    async with httpx.AsyncClient(headers=AUTH, timeout=30) as http:
        await streaming(http, first)
        task = (await http.post(a.url + "/v1/tasks", json={"provider": "generic"})).json()
        hook = task["callback_url"]
        for progress in (10, 20, 30):
            await post_progress(http, hook, progress)
        await first.wait_for(task["id"], "task.progress")
        await until(_has(first, 4), what="B's stream to carry the first four events")
        b.kill()  # SIGKILL: no goodbye, the connection just drops
        for progress in (40, 50, 60):  # published while the subscriber is away
            await post_progress(http, hook, progress)
        await first.close()
        last_seen = first.seqs()[-1]

        second = subscribe(c, last_event_id=last_seen)
        await streaming(http, second)
        await http.post(hook, json={"status": "succeeded"})
        await second.wait_for(task["id"], "task.succeeded")

    seqs = first.seqs() + second.seqs()
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a repeat across replicas"
    progress = [e["progress"] for _, e in first.events + second.events if e["progress"]]
    assert progress == [10, 20, 30, 40, 50, 60]


def _has(sub: Subscriber, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(sub.events) >= count

    return check


_LEASE_WORKER = """
import asyncio, json, sys, time
from hub.store.base import PollRelease
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
            await store.release_polls(
                owner, [PollRelease(claim.task.id, time.time(), claim.attempts + 1)]
            )
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


class FakeLinkrApi:
    """LinkrAPI's status endpoint, counting how many polls of each task are in flight at once."""

    def __init__(self) -> None:
        self.in_flight: dict[str, int] = {}
        self.most_at_once: dict[str, int] = {}
        self.polls: dict[str, int] = {}

    def app(self) -> Starlette:
        async def fetch(request: Request) -> JSONResponse:
            task_id = request.path_params["task_id"]
            self.in_flight[task_id] = self.in_flight.get(task_id, 0) + 1
            self.most_at_once[task_id] = max(
                self.most_at_once.get(task_id, 0), self.in_flight[task_id]
            )
            try:
                await asyncio.sleep(0.05)  # a slow provider widens any overlap
            finally:
                self.in_flight[task_id] -= 1
            self.polls[task_id] = self.polls.get(task_id, 0) + 1
            progress = min(self.polls[task_id], 99)
            return JSONResponse({"task_id": task_id, "status": "processing", "progress": progress})

        return Starlette(routes=[Route("/api/v1/fetch/{task_id}", fetch)])


async def test_pollers_on_three_replicas_never_poll_one_task_at_once(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    provider = FakeLinkrApi()
    async with serve(provider.app()) as provider_url:
        env = {
            "HUB_DATABASE_URL": postgres_url,
            "HUB_BROKER_URL": redis_url,
            "HUB_SECRET": "replica-test-secret",
            "HUB_API_KEY": API_KEY,
            "HUB_LINKRAPI_URL": provider_url,
            "HUB_LINKRAPI_KEY": "lkr_test",
            # Poll as often as possible, so three pollers keep competing for the same tasks.
            "HUB_POLL_AFTER_S": "0.02",
            "HUB_POLL_TICK_S": "0.02",
            "HUB_POLL_MAX_INTERVAL_S": "0.05",
        }
        replicas = [HubProcess({**env, "HUB_DATA_DIR": str(tmp_path / n)}) for n in "abc"]
        try:
            await asyncio.gather(*(asyncio.to_thread(r.start, 30.0) for r in replicas))
            async with httpx.AsyncClient(headers=AUTH, timeout=30) as http:
                for index in range(4):
                    body = {"provider": "linkrapi", "external_id": f"lk-{index}"}
                    created = await http.post(replicas[index % 3].url + "/v1/tasks", json=body)
                    assert created.status_code == 201, created.text

            async def polled_often() -> bool:
                ids = [f"lk-{i}" for i in range(4)]
                return all(provider.polls.get(i, 0) >= 8 for i in ids)

            await until(polled_often, timeout=20, what="every task to be polled 8 times")
        finally:
            await asyncio.gather(*(asyncio.to_thread(r.stop) for r in replicas))
    assert provider.most_at_once == {f"lk-{i}": 1 for i in range(4)}
