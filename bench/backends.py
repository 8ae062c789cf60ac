"""Backends benchmark: SQLite + memory bus against PostgreSQL + Redis bus, in one run.

    python -m bench.backends [--rounds 3] [--duration 3] [--connections 32] [--samples 300]

It prints, for each configuration:

* ingest throughput: durable webhooks/s (``wrk`` against one replica) and HTTP latency;
* webhook-to-subscriber latency: a webhook POSTed, then the time until its event arrives on an
  SSE stream (``GET /v1/events``), one at a time, p50/p95/p99. With PostgreSQL + Redis the
  webhook goes to replica A and the stream is on replica B, so every event crosses the bus.

What the Redis bus adds (target: at most 2 ms p50) is the difference between a stream on B and
one on A, the replica that took the webhook (which delivers to its own streams without the
bus), on the same cluster; PostgreSQL + memory on one process is printed for reference.

Every configuration runs at the same time and the measurements are interleaved (one latency
sample of each in turn, wrk rounds in turn), so load from anything else on the machine falls
on all of them alike. Throughput is the median of the rounds. Servers are separate uvicorn
processes (uvloop, httptools); PostgreSQL and Redis are taken from ``HUB_TEST_POSTGRES_URL`` /
``HUB_TEST_REDIS_URL`` (default 127.0.0.1), each run in a fresh schema and channel.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


def load_script(url: str, work: Path, args: argparse.Namespace) -> Path:
    """Tasks on ``url`` and a wrk script posting webhooks to them; warms the server up."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        paths = [
            httpx.URL(
                client.post("/v1/tasks", json={"provider": "generic"}).json()["callback_url"]
            ).raw_path.decode()
            for _ in range(args.tasks)
        ]
    port = int(url.rsplit(":", 1)[1])
    lua = write_load(work, port, paths, "x" * 200)
    run_wrk(lua, port, 1, args.connections)
    return lua


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


async def latencies(routes: dict[str, tuple[str, str]], samples: int) -> dict[str, list[float]]:
    """``samples`` webhook-to-stream timings per route ``(hook_url, stream_url)``, interleaved:
    one of each in turn, after 20 untimed rounds."""
    warm_up = 20
    timings: dict[str, list[float]] = {key: [] for key in routes}
    async with httpx.AsyncClient(headers=AUTH, timeout=httpx.Timeout(10, read=60)) as http:
        probes: dict[str, Probe] = {}
        try:
            for n in range(samples + warm_up):
                step = n % 99 + 1  # progress must rise to be applied: a new task every 99
                for key, (hook_url, stream_url) in routes.items():
                    if step == 1:
                        if key in probes:
                            probes[key].close()
                        probes[key] = Probe(http, hook_url, stream_url)
                        await probes[key].open()
                    took = await probes[key].send(step)
                    if n >= warm_up:
                        timings[key].append(took)
        finally:
            for probe in probes.values():
                probe.close()
    return timings


CONFIGS = [
    # key, store+bus, replicas
    ("sqlite", "sqlite+memory", 1),
    ("pg-memory", "postgresql+memory", 1),
    ("pg-redis", "postgresql+redis", 2),
]
#: Latency routes: key, cluster, replica the webhook goes to, replica streaming, label.
ROUTES = [
    ("sqlite", "sqlite", 0, 0, "SQLite + memory, one process"),
    ("pg-memory", "pg-memory", 0, 0, "PostgreSQL + memory, one process"),
    ("pg-redis-a", "pg-redis", 0, 0, "PostgreSQL + Redis, webhook and stream on A"),
    ("pg-redis", "pg-redis", 0, 1, "PostgreSQL + Redis, webhook on A, stream on B"),
]
INGEST = {"sqlite": "SQLite + memory", "pg-redis": "PostgreSQL + Redis"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per config")
    parser.add_argument("--duration", type=int, default=3, help="seconds of one wrk round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--samples", type=int, default=300, help="latency samples per config")
    args = parser.parse_args()
    print(f"PostgreSQL {POSTGRES_URL.split('@')[-1]}, Redis {REDIS_URL}")
    with contextlib.ExitStack() as stack:
        urls: dict[str, list[str]] = {}
        works: dict[str, Path] = {}
        for key, kind, count in CONFIGS:
            works[key] = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            database, broker = stack.enter_context(backend(kind, works[key]))
            urls[key] = stack.enter_context(replicas(count, database, broker, works[key]))
        ingest: dict[str, list[Result]] = {key: [] for key in INGEST}
        loads = {key: load_script(urls[key][0], works[key], args) for key in INGEST}
        for _ in range(args.rounds):
            for key in INGEST:
                port = int(urls[key][0].rsplit(":", 1)[1])
                ingest[key].append(run_wrk(loads[key], port, args.duration, args.connections))
        routes = {key: (urls[c][hook], urls[c][stream]) for key, c, hook, stream, _ in ROUTES}
        before = lag_histogram(urls["pg-redis"][-1])  # leave out the wrk rounds' messages
        delivery = asyncio.run(latencies(routes, args.samples))
        lag = lag_summary(before, lag_histogram(urls["pg-redis"][-1]))
    labels = {key: label for key, *_, label in ROUTES}
    print(
        f"\ningest (wrk, one replica, {args.connections} connections, "
        f"median of {args.rounds} x {args.duration} s)"
    )
    for key, results in ingest.items():
        mid = sorted(results, key=lambda r: r.rps)[len(results) // 2]
        print(
            f"  {INGEST[key]:<20} {mid.rps:>7.0f} webhooks/s   p50 {mid.p50_ms:6.2f} ms   "
            f"p99 {mid.p99_ms:7.2f} ms   non-2xx {sum(r.errors for r in results)}"
        )
    print(f"\nwebhook -> SSE subscriber ({args.samples} sequential webhooks each, interleaved)")
    for key, samples in delivery.items():
        lat = Latency(labels[key], samples)
        print(
            f"  {lat.name:<48} p50 {lat.p50:6.2f} ms   p95 {lat.pct(0.95):6.2f} ms   "
            f"p99 {lat.pct(0.99):6.2f} ms"
        )
    p50 = {key: statistics.median(samples) for key, samples in delivery.items()}
    added = p50["pg-redis"] - p50["pg-redis-a"]
    verdict = "met" if added <= 2.0 else "NOT met"
    print(
        f"\nRedis bus adds {added:.2f} ms p50 to delivery (stream on B vs on A, same cluster; "
        f"target <= 2 ms: {verdict}); {p50['pg-redis'] - p50['pg-memory']:.2f} ms against "
        "PostgreSQL + memory on one process"
    )
    count, mean, p50_bound = lag
    print(
        f"Redis bus lag on B (publish on A -> received on B, hub_bus_lag_seconds): "
        f"{count:.0f} messages, mean {mean:.2f} ms, p50 <= {p50_bound:g} ms"
    )


def lag_histogram(url: str) -> dict[str, float]:
    """The raw ``hub_bus_lag_seconds`` samples of a replica (``le`` buckets, sum, count)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=10).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hub_bus_lag_seconds_bucket":
                values[sample.labels["le"]] = sample.value
            elif sample.name in ("hub_bus_lag_seconds_count", "hub_bus_lag_seconds_sum"):
                values[sample.name.rsplit("_", 1)[1]] = sample.value
    return values


def lag_summary(before: dict[str, float], after: dict[str, float]) -> tuple[float, float, float]:
    """``(messages, mean ms, upper bound of the p50 bucket in ms)`` between two scrapes."""
    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    count = delta.get("count", 0.0)
    mean = delta.get("sum", 0.0) / count * 1000 if count else 0.0
    buckets = sorted((float(k), v) for k, v in delta.items() if k not in ("count", "sum"))
    bound = next((le for le, seen in buckets if seen >= count / 2), float("inf"))
    return count, mean, bound * 1000


if __name__ == "__main__":
    main()
