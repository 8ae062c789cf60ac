"""Subscriber processes for the fan-out benchmark: many raw SSE connections per process.

Each connection counts ``id:`` lines and reads the send time the poster put into every
event's payload (``/bench/<unix time>/``), so latency is webhook-sent to bytes-received.
asyncio protocols, not an HTTP client: the subscribers must cost far less than the server.
"""

from __future__ import annotations

import asyncio
import re
import resource
import time
from array import array
from multiprocessing.connection import Connection

_STAMP = re.compile(rb"/bench/(\d+\.\d+)/")
_TAIL = 48  # longer than a stamp, so one split across two reads is still seen once


class _State:
    def __init__(self, pipe: Connection, connections: int, per_burst: int) -> None:
        self.pipe = pipe
        self.per_burst = per_burst
        self.connections = connections
        self.ready = 0
        self.remaining: dict[int, int] = {}
        self.last: dict[int, float] = {}
        self.latencies = array("d")
        self.all_ready = asyncio.Event()
        self.finished = asyncio.Event()
        self.bursts = 0

    def reached(self, burst: int, now: float) -> None:
        left = self.remaining.get(burst, self.connections) - 1
        self.remaining[burst] = left
        self.last[burst] = max(self.last.get(burst, 0.0), now)
        if left == 0:
            self.pipe.send(("burst", burst, self.last[burst]))
            if burst == self.bursts:
                self.finished.set()


class _Subscriber(asyncio.Protocol):
    def __init__(self, state: _State, request: bytes) -> None:
        self.state = state
        self.request = request
        self.count = 0
        self.bursts_done = 0
        self.tail = b""
        self.started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]  (uvloop's is no subclass)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.started:
            self.started = True
            self.state.ready += 1
            if self.state.ready == self.state.connections:
                self.state.all_ready.set()
        buf = self.tail + data
        skip = len(self.tail)
        new = buf.count(b"id: ") - self.tail.count(b"id: ")
        if self.bursts_done:  # latencies of the warm-up burst are not counted
            for match in _STAMP.finditer(buf):
                if match.end() > skip:
                    self.state.latencies.append(now - float(match.group(1)))
        self.tail = buf[-_TAIL:]
        if new:
            self.count += new
            per_burst = self.state.per_burst
            while self.count >= per_burst * (self.bursts_done + 1):
                self.bursts_done += 1
                self.state.reached(self.bursts_done, now)


async def _run(
    pipe: Connection, port: int, path: str, api_key: str, connections: int, per_burst: int
) -> None:
    state = _State(pipe, connections, per_burst)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {api_key}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    transports = []
    for start in range(0, connections, 250):  # in waves: the server's backlog is finite
        batch = [
            loop.create_connection(lambda: _Subscriber(state, request), "127.0.0.1", port)
            for _ in range(start, min(start + 250, connections))
        ]
        transports += [t for t, _ in await asyncio.gather(*batch)]
    await asyncio.wait_for(state.all_ready.wait(), 120)
    pipe.send(("ready",))
    command = await loop.run_in_executor(None, pipe.recv)  # ("bursts", n)
    state.bursts = command[1]
    if state.bursts:
        await asyncio.wait_for(state.finished.wait(), 600)
    pipe.send(("latencies", state.latencies.tobytes()))
    await loop.run_in_executor(None, pipe.recv)  # ("close",)
    for transport in transports:
        transport.close()


def client_process(
    pipe: Connection, port: int, path: str, api_key: str, connections: int, per_burst: int
) -> None:
    """Entry point of one subscriber process (multiprocessing target)."""
    import uvloop

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(_run(pipe, port, path, api_key, connections, per_burst))
