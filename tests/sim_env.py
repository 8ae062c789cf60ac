"""A simulator and a hub, each behind a real uvicorn on loopback, wired to each other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hub import Hub
from hub.simulator import SimConfig, Simulator, create_app
from tests.conftest import API_KEY, make_settings
from tests.support import free_port, running_server

PROVIDERS = ("linkrapi", "midjourney-api", "imagineapi", "midapi")
KEYS = {
    "linkrapi": "lkr_test_key",
    "midjourney-api": "mjapi-test-key",
    "imagineapi": "imagine-test-token",
    "midapi": "midapi-test-key",
}


def fast_config(**knobs: Any) -> SimConfig:
    """Simulator timings in tens of milliseconds, a fixed seed, and ``knobs``."""
    values: dict[str, Any] = {"seed": 7, "queue_s": 0.02, "step_s": 0.03, "steps": 4}
    values.update(knobs)
    return SimConfig(**values)


def provider_settings(sim_url: str) -> dict[str, Any]:
    """Settings that point every supported provider at the simulator."""
    values: dict[str, Any] = {}
    for slug in PROVIDERS:
        prefix = slug.replace("-", "_")
        values[f"{prefix}_url"] = sim_url
        values[f"{prefix}_key"] = KEYS[slug]
    return values


@dataclass
class Env:
    """What a test talks to."""

    sim: Simulator
    sim_url: str
    hub: Hub
    hub_url: str
    api: httpx.AsyncClient

    async def wait(self, task_id: str, timeout: float = 10.0) -> Any:
        return await self.hub.wait(task_id, timeout=timeout)


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, sim_config: SimConfig | None = None, **overrides: Any
) -> AsyncIterator[Env]:
    """The simulator and a hub on loopback; the hub's settings take ``overrides``."""
    sim = Simulator(sim_config or fast_config())
    sim_port, port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    values: dict[str, Any] = {
        "port": port,
        "public_url": f"http://127.0.0.1:{port}",
        "sqlite_synchronous": "NORMAL",  # durability is tested elsewhere; keep commits quick
        "poll_after_s": 30.0,
        "poll_tick_s": 0.05,
        "submit_backoff_s": 0.01,
        "submit_backoff_max_s": 0.05,
        **provider_settings(sim_url),
    }
    values.update(overrides)
    hub = Hub(make_settings(tmp_path, **values))
    async with (
        running_server(create_app(sim), sim_port) as sim_server,
        running_server(hub.app, port) as hub_server,
        httpx.AsyncClient(
            base_url=hub.base_url(), headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
        ) as api,
    ):
        sim.config.imagineapi_webhooks["*"] = hub.account_hook_url("imagineapi")
        try:
            yield Env(sim, sim_url, hub, hub.base_url(), api)
        finally:
            # Both stop at once: uvicorn takes a tick or two to notice should_exit.
            sim_server.should_exit = hub_server.should_exit = True


async def eventually(check: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait until ``check()`` is true (bounded)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(interval)
