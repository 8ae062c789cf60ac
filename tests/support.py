"""Shared test helpers: real uvicorn servers on loopback, in-loop or as subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_server(app: ASGIApp, port: int) -> AsyncIterator[uvicorn.Server]:
    """A started uvicorn on loopback in this event loop; setting ``should_exit`` early lets
    several servers stop together."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn exited during start-up")
                await asyncio.sleep(0.005)
        yield server
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Run ``app`` under a real uvicorn on loopback in this event loop; yields its base URL."""
    port = port or free_port()
    async with running_server(app, port):
        yield f"http://127.0.0.1:{port}"


class HubProcess:
    """``python -m hub serve`` in a subprocess, for kill -9 and multi-replica tests."""

    def __init__(
        self, env: Mapping[str, str], port: int | None = None, log: Path | None = None
    ) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.log = log  # where stderr goes, appended across restarts (None: inherited)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        sink = self.log.open("ab") if self.log else None
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hub",
                    "serve",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                env=self.env,
                cwd=ROOT,
                stderr=sink,
            )
        finally:
            if sink is not None:
                sink.close()  # the child has its own copy of the descriptor
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode} during start-up")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError("hub did not become ready")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
