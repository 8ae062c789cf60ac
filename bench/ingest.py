"""Ingest benchmark: durable webhooks/s and latency, against three baselines in the same run.

    python -m bench.ingest [--duration 10] [--connections 64] [--tasks 1000]

Starts each server as its own uvicorn process (httptools + uvloop, one worker, access log
off), drives it with ``wrk`` (``apt-get install wrk``) from the same machine, and prints
requests/s, p50/p99 latency, each server's CPU time per request, and the hub's ratio to each
baseline (see ``bench.baselines``: a dict of ``asyncio.Event``, a bare Starlette JSON endpoint,
and the durable floor, the least a receiver that fsyncs before answering can do). For the hub
it then counts the events in the SQLite file (every acknowledged webhook must be there) and
reads its group-commit metrics: batches, webhooks and milliseconds per batch, and how much of
the time a batch was in hand.

The load posts distinct webhooks round-robin over the tasks, but each task always gets the
same progress, so after its first webhook the hub stores every one as ``stale`` (an event
row and its dedupe check, no task update and no fan-out). ``bench.instructions --reports
advance`` counts the cost of applied progress reports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"

LUA = """
local paths = {}
local n = 0
local prefix = ""
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end
function init(args)
  prefix = tid or "0"
end
function request()
  n = n + 1
  local body = '{"status":"running","progress":' .. (n %% 100) ..
    ',"delivery_id":"' .. prefix .. "-" .. n .. '","pad":"%(pad)s"}'
  return wrk.format("POST", paths[(n %% #paths) + 1],
    {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass
class Result:
    name: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_seconds: float | None = None  # the server process's CPU time during the round
    loop_cpu_seconds: float | None = None  # of which its main (event loop) thread's

    def cpu_us_per_request(self, *, loop: bool = False) -> float | None:
        """CPU time per request (the process, or its event loop thread), which a busy
        neighbour changes far less than it changes requests/s."""
        seconds = self.loop_cpu_seconds if loop else self.cpu_seconds
        return seconds / self.requests * 1e6 if seconds is not None and self.requests else None


def process_cpu_seconds(pid: int, thread: int | None = None) -> float | None:
    """User plus system CPU time of ``pid``, or of one of its threads, so far (Linux
    ``/proc``; None elsewhere)."""
    stat = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    try:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steal_ticks() -> tuple[int, int] | None:
    """CPU time stolen by the hypervisor, and all CPU time, from ``/proc/stat``."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(value) for value in first[1:9]]  # user .. steal; guest time is inside user
    return ticks[7], sum(ticks)


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/hooks/x/y", timeout=0.5)  # any answer will do
            return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def uvicorn_args(target: str, port: int, factory: bool = False) -> list[str]:
    args = [sys.executable, "-m", "uvicorn", target, "--port", str(port)]
    args += ["--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
    return args + (["--factory"] if factory else [])


def run_wrk(lua: Path, port: int, duration: int, connections: int) -> Result:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(lua),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Result(
        name="",
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_latency(out, "50%"),
        p99_ms=_latency(out, "99%"),
        errors=int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
    )


def _latency(out: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
    assert match, out
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


class Server:
    """One receiver under test: its process, its wrk script, and its results per round."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int, lua: Path) -> None:
        self.name, self.proc, self.port, self.lua = name, proc, port, lua
        self.results: list[Result] = []

    def run_round(self, duration: int, connections: int) -> None:
        pid = self.proc.pid
        # The main thread's id is the process id; it runs the event loop.
        before = process_cpu_seconds(pid), process_cpu_seconds(pid, thread=pid)
        result = run_wrk(self.lua, self.port, duration, connections)
        after = process_cpu_seconds(pid), process_cpu_seconds(pid, thread=pid)
        if before[0] is not None and after[0] is not None:
            result.cpu_seconds = after[0] - before[0]
        if before[1] is not None and after[1] is not None:
            result.loop_cpu_seconds = after[1] - before[1]
        self.results.append(result)

    def median(self) -> Result:
        """Median requests/s and latencies; requests and CPU time summed over the rounds."""
        ordered = sorted(self.results, key=lambda r: r.rps)
        middle = ordered[len(ordered) // 2]
        cpu = [r.cpu_seconds for r in self.results if r.cpu_seconds is not None]
        loop = [r.loop_cpu_seconds for r in self.results if r.loop_cpu_seconds is not None]
        return Result(
            self.name,
            sum(r.requests for r in self.results),
            middle.rps,
            middle.p50_ms,
            middle.p99_ms,
            sum(r.errors for r in self.results),
            sum(cpu) if len(cpu) == len(self.results) else None,
            sum(loop) if len(loop) == len(self.results) else None,
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def start_hub(work: Path, args: argparse.Namespace, pad: str) -> Server:
    port = free_port()
    env = {
        "HUB_SECRET": "bench",
        "HUB_API_KEY": API_KEY,
        "HUB_DATABASE_URL": f"sqlite:///{work / 'hub.db'}",
        "HUB_DATA_DIR": str(work),
        "HUB_LOG_LEVEL": "warning",
    }
    proc = start(uvicorn_args("hub.asgi:create_app", port, factory=True), env, port)
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {API_KEY}"}
    ) as client:
        paths = []
        for _ in range(args.tasks):
            url = client.post("/v1/tasks", json={"provider": "generic"}).json()["callback_url"]
            paths.append(httpx.URL(url).raw_path.decode())
    return Server("callback-hub (SQLite, FULL)", proc, port, write_load(work, port, paths, pad))


def start_app(work: Path, name: str, target: str, args: argparse.Namespace, pad: str) -> Server:
    port = free_port()
    proc = start(uvicorn_args(target, port), {"BENCH_DATA_DIR": str(work)}, port)
    paths = [f"/hooks/generic/task{i}" for i in range(args.tasks)]
    return Server(name, proc, port, write_load(work, port, paths, pad))


def commit_figures(port: int) -> dict[str, float]:
    """The hub's group-commit totals, from its ``/metrics``."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    names = ("hub_commit_batch_size_sum", "hub_commit_batch_size_count", "hub_commit_seconds_sum")
    figures = {}
    for name in names:
        match = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
        assert match, f"{name} missing from /metrics"
        figures[name] = float(match.group(1))
    return figures


def count_webhook_events(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM events WHERE source = 'webhook'").fetchone()[0]
        )


def write_load(work: Path, port: int, paths: list[str], pad: str) -> Path:
    """A wrk script posting distinct webhooks round-robin over ``paths``."""
    paths_file = work / f"paths-{port}.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    lua = work / f"load-{port}.lua"
    lua.write_text(LUA % {"paths": paths_file, "pad": pad})
    return lua


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, servers interleaved")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench.ingest needs wrk: apt-get install wrk")
    pad = "x" * max(0, args.body_bytes - 90)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        servers = [
            start_hub(work, args, pad),
            start_app(
                work, "dict of asyncio.Event (no disk)", "bench.baselines:dict_of_events", args, pad
            ),
            start_app(work, "bare Starlette JSON endpoint", "bench.baselines:bare_json", args, pad),
            start_app(
                work,
                "durable floor (parse, INSERT, fsync)",
                "bench.baselines:durable_floor",
                args,
                pad,
            ),
        ]
        try:
            for server in servers:  # warm-up, not counted
                run_wrk(server.lua, server.port, 1, args.connections)
            before = count_webhook_events(work / "hub.db")
            commits_before = commit_figures(servers[0].port)
            steal_before = steal_ticks()
            # Rounds interleave the servers, so a burst of load from elsewhere on the machine
            # hits all of them rather than skewing one; the medians are compared.
            for _ in range(args.rounds):
                for server in servers:
                    server.run_round(args.duration, args.connections)
            steal_after = steal_ticks()
            stored = count_webhook_events(work / "hub.db") - before
            commits = {
                name: value - commits_before[name]
                for name, value in commit_figures(servers[0].port).items()
            }
        finally:
            for server in servers:
                server.stop()
    hub, events, bare, floor = (server.median() for server in servers)
    print(
        f"{args.rounds} rounds x {args.duration}s per server (medians), {args.connections} "
        f"connections, {args.body_bytes}-byte bodies, {args.tasks} tasks, {os.cpu_count()} cores"
    )
    print(
        f"{'server':36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
        f"{'CPU us/req':>10} {'loop us/req':>11}"
    )
    for r in (hub, events, bare, floor):
        print(
            f"{r.name:36} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:8d} "
            f"{_figure(r.cpu_us_per_request()):>10} {_figure(r.cpu_us_per_request(loop=True)):>11}"
        )
    if steal_before is not None and steal_after is not None:
        stolen = (steal_after[0] - steal_before[0]) / max(steal_after[1] - steal_before[1], 1)
        print(
            f"CPU time stolen by the hypervisor during the rounds: {stolen:.0%}"
            + ("  (a busy host: compare CPU us/req rather than req/s)" if stolen > 0.05 else "")
        )
    acknowledged = hub.requests - hub.errors
    print(
        f"hub: acknowledged {acknowledged}, stored {stored}, lost {max(0, acknowledged - stored)}"
    )
    batches = max(commits["hub_commit_batch_size_count"], 1)
    # Batches still committing as a round ends are counted whole, so this can pass 100%.
    busy = min(commits["hub_commit_seconds_sum"] / (args.rounds * args.duration), 1.0)
    print(
        f"hub group commit: {batches:.0f} batches, "
        f"{commits['hub_commit_batch_size_sum'] / batches:.1f} webhooks and "
        f"{commits['hub_commit_seconds_sum'] / batches * 1000:.2f} ms per batch; "
        f"a batch was in hand {busy:.0%} of the hub's measured time (its writing, its commit, "
        f"and its waits for the event loop)"
    )
    print(
        f"hub / dict of events: {hub.rps / events.rps:.2f}x; "
        f"hub / bare JSON endpoint: {hub.rps / bare.rps:.2f}x; "
        f"hub / durable floor: {hub.rps / floor.rps:.2f}x "
        f"(durable floor / bare JSON endpoint: {floor.rps / bare.rps:.2f}x)"
    )
    hub_cpu, bare_cpu = hub.cpu_us_per_request(), bare.cpu_us_per_request()
    if hub_cpu and bare_cpu:
        print(f"CPU per request, hub / bare JSON endpoint: {hub_cpu / bare_cpu:.2f}x")
    if args.json:
        print(json.dumps({r.name: r.__dict__ for r in (hub, events, bare, floor)}))


if __name__ == "__main__":
    main()
