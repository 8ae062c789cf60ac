"""Fan-out benchmark: webhook-to-subscriber latency, deliveries/s and memory per connection.

Runs the hub and, in the same run, the minimal hand-rolled broadcast (one ``asyncio.Queue``
per subscriber, :mod:`bench.fanout_server`) as the baseline, each in its own uvicorn process
(uvloop + httptools). Subscriber processes (:mod:`bench.fanout_clients`) hold the streams.
For each subscriber count: connect everyone, read the server's RSS (memory per idle
connection), then post a warm-up burst and bursts of events as fast as 16 concurrent posters
can (webhooks to the hub, ``POST /publish`` to the baseline) and time until every subscriber
has every event.

    python -m bench.fanout --subscribers 1000 5000 --events 100 --bursts 3 --hold 10000

Deliveries/s = subscribers x events / (last delivery - first post); latency = send of the
webhook to receipt by a subscriber, over every delivery (p50, p99). Ratios are hub/baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from bench.fanout_clients import client_process
from bench.fanout_server import API_KEY

JSON = {"content-type": "application/json"}
PAD = "x" * 700  # an event of ~1.1 KB


@dataclass
class Result:
    """One server at one subscriber count."""

    kind: str
    subscribers: int
    rates: list[float]
    p50_ms: float
    p99_ms: float
    kb_per_conn: float

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _hub_body(burst: int) -> dict[str, Any]:
    url = f"https://cdn.example/bench/{time.time():.6f}/{PAD}"
    return {"status": "running", "progress": burst + 1, "outputs": [{"url": url}]}


def _baseline_body(number: int) -> dict[str, Any]:
    now = time.time()
    return {  # the same fields and size as the hub's event JSON
        "id": number,
        "seq": number,
        "task_id": "tsk_01M804EAYQRZVRCBE7BENCHMARK",
        "provider": "generic",
        "provider_task_id": None,
        "type": "task.progress",
        "status": "running",
        "provider_status": "running",
        "progress": 1,
        "outputs": [{"url": f"https://cdn.example/bench/{now:.6f}/{PAD}", "role": "image"}],
        "actions": [],
        "error": None,
        "disposition": "applied",
        "source": "webhook",
        "received_at": now,
    }


async def _recv(pipe: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


async def _wait_up(url: str, kind: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(400):
            try:
                if kind == "baseline":
                    await client.get(url + "/nothing")
                    return
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{kind} did not start")


async def run_one(kind: str, subscribers: int, events: int, bursts: int, clients: int) -> Result:
    """Measure one server at one subscriber count."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        server = subprocess.Popen(  # noqa: ASYNC220  (starting it is instant)
            [sys.executable, "-m", "bench.fanout_server", kind, str(port), data_dir]
        )
        processes = []
        try:
            await _wait_up(url, kind)
            headers = {"Authorization": f"Bearer {API_KEY}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api:
                hooks = []
                if kind == "hub":  # tasks registered before anyone subscribes
                    for _ in range((bursts + 1) * events):
                        task = (await api.post("/v1/tasks", json={"provider": "generic"})).json()
                        hooks.append(task["callback_url"])
                await asyncio.sleep(0.5)
                rss_before = _rss_kb(server.pid)
                ctx = multiprocessing.get_context("spawn")
                path = "/v1/events" if kind == "hub" else "/events"
                pipes = []
                for i in range(clients):
                    count = subscribers // clients + (1 if i < subscribers % clients else 0)
                    mine, theirs = ctx.Pipe()
                    process = ctx.Process(
                        target=client_process,
                        args=(theirs, port, path, API_KEY, count, events),
                        daemon=True,
                    )
                    process.start()
                    processes.append(process)
                    pipes.append(mine)
                for pipe in pipes:
                    assert (await _recv(pipe))[0] == "ready"
                await asyncio.sleep(1.0)
                kb_per_conn = (_rss_kb(server.pid) - rss_before) / subscribers
                bursts += 1  # plus a warm-up burst
                for pipe in pipes:
                    pipe.send(("bursts", bursts))
                rates = await _bursts(kind, api, pipes, hooks, subscribers, events, bursts)
                latencies = array("d")
                for pipe in pipes:
                    message = await _recv(pipe)
                    latencies.frombytes(message[1])
                    pipe.send(("close",))
        finally:
            for process in processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
            server.terminate()
            server.wait(timeout=10)
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000 if ordered else float("nan")
    p99 = ordered[int(len(ordered) * 0.99)] * 1000 if ordered else float("nan")
    return Result(kind, subscribers, rates, p50, p99, kb_per_conn)


async def _bursts(
    kind: str,
    api: httpx.AsyncClient,
    pipes: list[Connection],
    hooks: list[str],
    subscribers: int,
    events: int,
    bursts: int,
) -> list[float]:
    """Post each burst with 16 concurrent posters; deliveries/s of every burst but the first."""
    rates = []
    posted = 0
    for burst in range(1, bursts + 1):
        start = time.time()
        queue = list(range(events))

        async def post(queue: list[int] = queue, burst: int = burst, posted: int = posted) -> None:
            while queue:
                i = queue.pop()
                if kind == "hub":
                    target, body = hooks[posted + i], _hub_body(burst)
                else:
                    target, body = "/publish", _baseline_body(posted + i + 1)
                response = await api.post(target, content=json.dumps(body), headers=JSON)
                response.raise_for_status()

        await asyncio.gather(*(post() for _ in range(16)))
        posted += events
        lasts = [await _recv(pipe) for pipe in pipes]
        assert all(m[0] == "burst" and m[1] == burst for m in lasts), lasts
        if burst > 1:  # the first burst warms the server up and is not counted
            rates.append(subscribers * events / (max(m[2] for m in lasts) - start))
        await asyncio.sleep(0.5)
    return rates


def _line(result: Result) -> str:
    return (
        f"{result.kind:9} {result.subscribers:>6}  {result.rate:>10,.0f}/s  "
        f"p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  "
        f"{result.kb_per_conn:5.1f} KB/conn   bursts {', '.join(f'{r:,.0f}' for r in result.rates)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--events", type=int, default=100, help="events per burst")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2, help="subscriber processes")
    parser.add_argument("--hold", type=int, default=0, help="also hold this many on the hub")
    parser.add_argument("--only", choices=["hub", "baseline"], help="measure one server")
    args = parser.parse_args()
    kinds = [args.only] if args.only else ["baseline", "hub"]
    for subscribers in args.subscribers:
        results = {}
        for kind in kinds:
            results[kind] = asyncio.run(
                run_one(kind, subscribers, args.events, args.bursts, args.clients)
            )
            print(_line(results[kind]), flush=True)
        if len(results) == 2:
            hub, base = results["hub"], results["baseline"]
            print(
                f"  ratio hub/baseline at {subscribers}: "
                f"deliveries/s {hub.rate / base.rate:.2f}x, p99 {hub.p99_ms / base.p99_ms:.2f}x, "
                f"memory {hub.kb_per_conn / base.kb_per_conn:.2f}x",
                flush=True,
            )
    if args.hold:
        held = asyncio.run(run_one("hub", args.hold, args.events, 1, args.clients))
        print("held:", _line(held), flush=True)


if __name__ == "__main__":
    main()
