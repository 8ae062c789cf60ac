"""A hub killed with tasks in flight reconciles them with the provider when it starts again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from hub.simulator import Simulator, create_app
from tests.conftest import API_KEY
from tests.sim_env import KEYS, eventually, fast_config
from tests.support import HubProcess, free_port, serve


def _environment(tmp_path: Path, sim_url: str, port: int) -> dict[str, str]:
    env = {
        "HUB_SECRET": "restart-secret",
        "HUB_API_KEY": API_KEY,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # Only the start-up reconciliation may finish these tasks: no poll is due for an hour.
        "HUB_POLL_AFTER_S": "3600",
    }
    for slug, key in KEYS.items():
        prefix = "HUB_" + slug.replace("-", "_").upper()
        env[prefix + "_URL"] = sim_url
        env[prefix + "_KEY"] = key
    return env


async def test_restart_with_tasks_in_flight_reconciles_them(tmp_path: Path) -> None:
    sim = Simulator(fast_config(step_s=0.3))
    async with serve(create_app(sim)) as sim_url:
        port = free_port()
        environment = _environment(tmp_path, sim_url, port)
        first = HubProcess(environment, port)
        await asyncio.to_thread(first.start)
        try:
            async with httpx.AsyncClient(
                base_url=first.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
            ) as api:
                ids = []
                for provider in ("linkrapi", "midjourney-api", "midapi"):
                    answer = await api.post(
                        "/v1/tasks",
                        json={"provider": provider, "submit": {"prompt": f"{provider} at night"}},
                    )
                    assert answer.status_code == 201, answer.text
                    ids.append(answer.json()["id"])
                await asyncio.to_thread(first.kill)
                # The provider finishes while the hub is down: its webhooks find nobody.
                await eventually(lambda: len(sim.jobs) == 3)
                await eventually(lambda: all(job.phase.done for job in sim.jobs.values()))
                await eventually(lambda: len(sim.deliverer.log) >= 3)
                assert {d.outcome for d in sim.deliverer.log} == {"error"}

                second = HubProcess(environment, port)
                await asyncio.to_thread(second.start)
                try:
                    for task_id in ids:
                        answer = await api.get(f"/v1/tasks/{task_id}", params={"wait": 15})
                        task = answer.json()
                        assert task["status"] == "succeeded", task
                        terminal = [e for e in task["events"] if e["status"] == "succeeded"]
                        assert [e["source"] for e in terminal] == ["poll"]
                finally:
                    await asyncio.to_thread(second.stop)
        finally:
            await asyncio.to_thread(first.kill)
