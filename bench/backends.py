"""Backends benchmark: SQLite + memory bus against PostgreSQL + Redis bus, in one run.

    python -m bench.backends [--duration 5] [--connections 32] [--samples 300]

For each configuration it prints

* ingest throughput: durable webhooks/s (``wrk`` against one replica) and HTTP latency;
* webhook-to-subscriber latency: a webhook POSTed, then the time until its event arrives on an
  SSE stream (``GET /v1/events``), one at a time, p50/p95/p99. With PostgreSQL + Redis the
  webhook goes to replica A and the stream is on replica B, so every event crosses the bus.

A third latency run, PostgreSQL + memory bus on one replica, has the same store cost without
the bus: the difference of the p50s is what the Redis bus adds (the target is at most 2 ms).
Servers are separate uvicorn processes (uvloop, httptools); PostgreSQL and Redis are taken
from ``HUB_TEST_POSTGRES_URL`` / ``HUB_TEST_REDIS_URL`` (default 127.0.0.1), each run in a
fresh schema and channel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from bench.ingest import API_KEY, Result, free_port, run_wrk, start, uvicorn_args, write_load
from tests.backends import (
    POSTGRES_URL,
    REDIS_URL,
    _create_schema,
    _drop_schema,
    postgres_schema_url,
    run_sync,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Latency:
    name: str
    samples: list[float]

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)


@contextmanager
def backend(kind: str, work: Path) -> Iterator[tuple[str, str]]:
    """``(database_url, broker_url)`` for ``kind``; PostgreSQL gets a fresh schema."""
    store, bus = kind.split("+")
    schema = f"hub_bench_{secrets.token_hex(4)}"
    if store == "postgresql":
        run_sync(_create_schema(schema))
    try:
        database = (
            postgres_schema_url(schema) if store == "postgresql" else f"sqlite:///{work}/hub.db"
        )
        broker = f"{REDIS_URL}?channel={schema}" if bus == "redis" else "memory://"
        yield database, broker
    finally:
        if store == "postgresql":
            run_sync(_drop_schema(schema))


@contextmanager
def replicas(count: int, database: str, broker: str, work: Path) -> Iterator[list[str]]:
    """``count`` hub processes on one store and bus; yields their base URLs."""
    procs, urls = [], []
    try:
        for index in range(count):
            port = free_port()
            env = {
                "HUB_SECRET": "bench",
                "HUB_API_KEY": API_KEY,
                "HUB_DATABASE_URL": database,
                "HUB_BROKER_URL": broker,
                "HUB_DATA_DIR": str(work / f"r{index}"),
                "HUB_LOG_LEVEL": "warning",
            }
            procs.append(start(uvicorn_args("hub.asgi:create_app", port, factory=True), env, port))
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)


def throughput(url: str, work: Path, args: argparse.Namespace) -> Result:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        paths = [
            httpx.URL(
                client.post("/v1/tasks", json={"provider": "generic"}).json()["callback_url"]
            ).raw_path.decode()
            for _ in range(args.tasks)
        ]
    port = int(url.rsplit(":", 1)[1])
    lua = write_load(work, port, paths, "x" * 200)
    run_wrk(lua, port, 1, args.connections)  # warm-up
    return run_wrk(lua, port, args.duration, args.connections)


class Probe:
    """One task: webhooks posted to one replica, its events streamed from another."""

    def __init__(self, http: httpx.AsyncClient, hook_url: str, stream_url: str) -> None:
        self.http, self.hook_url, self.stream_url = http, hook_url, stream_url
        self.arrived: dict[int, float] = {}
        self.wake = asyncio.Event()
        self.callback_url = ""
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        task = await self.http.post(self.hook_url + "/v1/tasks", json={"provider": "generic"})
        self.callback_url = task.json()["callback_url"]
        self.reader = asyncio.create_task(self._read(task.json()["id"]))
        await asyncio.sleep(0.3)  # let the stream open before timing anything

    async def _read(self, task_id: str) -> None:
        url = f"{self.stream_url}/v1/events?task_id={task_id}"
        async with aconnect_sse(self.http, "GET", url) as source:
            async for message in source.aiter_sse():
                data: dict[str, Any] = json.loads(message.data) if message.data else {}
                if data.get("progress") is not None:
                    self.arrived[data["progress"]] = time.perf_counter()
                    self.wake.set()

    async def send(self, progress: int) -> float:
        """Milliseconds from posting a progress webhook to seeing its event on the stream."""
        self.wake.clear()
        sent = time.perf_counter()
        body = {"status": "running", "progress": progress}
        response = await self.http.post(self.callback_url, json=body)
        assert response.json()["disposition"] == "applied", response.text
        async with asyncio.timeout(10):
            while progress not in self.arrived:
                await self.wake.wait()
                self.wake.clear()
        return (self.arrived.pop(progress) - sent) * 1000

    def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()


async def latency(hook_url: str, stream_url: str, samples: int, warm_up: int = 20) -> list[float]:
    """``samples`` sequential webhook-to-stream timings (after ``warm_up`` untimed ones)."""
    timings: list[float] = []
    async with httpx.AsyncClient(headers=AUTH, timeout=httpx.Timeout(10, read=60)) as http:
        probe: Probe | None = None
        try:
            for n in range(samples + warm_up):
                step = n % 99 + 1  # progress must rise to be applied: a new task every 99
                if step == 1:
                    if probe is not None:
                        probe.close()
                    probe = Probe(http, hook_url, stream_url)
                    await probe.open()
                assert probe is not None
                took = await probe.send(step)
                if n >= warm_up:
                    timings.append(took)
        finally:
            if probe is not None:
                probe.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per config")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--samples", type=int, default=300, help="latency samples per config")
    args = parser.parse_args()
    print(f"PostgreSQL {POSTGRES_URL.split('@')[-1]}, Redis {REDIS_URL}")
    ingest: dict[str, Result] = {}
    delivery: dict[str, Latency] = {}
    plan = [
        # (key, store+bus, replicas, measure ingest too, label)
        ("sqlite", "sqlite+memory", 1, True, "SQLite + memory, one process"),
        ("pg-memory", "postgresql+memory", 1, False, "PostgreSQL + memory, one process"),
        ("pg-redis", "postgresql+redis", 2, True, "PostgreSQL + Redis, webhook on A, stream on B"),
    ]
    for key, kind, count, ingest_too, label in plan:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            with (
                backend(kind, work) as (database, broker),
                replicas(count, database, broker, work) as urls,
            ):
                if ingest_too:
                    ingest[kind] = throughput(urls[0], work, args)
                samples = asyncio.run(latency(urls[0], urls[-1], args.samples))
                delivery[key] = Latency(label, samples)
    print(f"\ningest (wrk, one replica, {args.connections} connections, {args.duration} s)")
    for kind, result in ingest.items():
        print(
            f"  {kind:<18} {result.rps:>8.0f} webhooks/s   p50 {result.p50_ms:6.2f} ms   "
            f"p99 {result.p99_ms:6.2f} ms   non-2xx {result.errors}"
        )
    print(f"\nwebhook -> SSE subscriber ({args.samples} sequential webhooks)")
    for lat in delivery.values():
        print(
            f"  {lat.name:<48} p50 {lat.p50:6.2f} ms   p95 {lat.pct(0.95):6.2f} ms   "
            f"p99 {lat.pct(0.99):6.2f} ms"
        )
    added = delivery["pg-redis"].p50 - delivery["pg-memory"].p50
    verdict = "met" if added <= 2.0 else "NOT met"
    print(f"\nRedis bus adds {added:.2f} ms p50 (target <= 2 ms: {verdict})")


if __name__ == "__main__":
    main()
