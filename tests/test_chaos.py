"""Chaos: SIGKILL the hub 10 times under steady webhook load, restarting on the same SQLite file.

Providers are simulated by workers that post webhooks for many tasks and retry each until it
is answered 2xx, as real providers do. Meanwhile an SSE client follows every event with
:class:`~hub.client.HubClient` (which resumes with ``Last-Event-ID``), a task stream follows
one task with its subscriber token, and another process waits for every task's result by
long-polling. After every restart, each webhook answered 2xx so far must be in the database;
at the end, no applied event may exist twice, the streams must hold every ``seq`` exactly once
and in order, and the waiting process must have every result.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from hub.client import HubClient
from tests.support import ROOT, HubProcess, free_port

API_KEY = "chaos-key"
KILLS = 10
TASKS = 40
WORKERS = 16

WAITER = """
import asyncio, json, sys
import httpx
from hub.client import HubClient, HubHTTPError

async def main(url, key, ids):
    results = {}
    async with HubClient(url, api_key=key, timeout=5) as client:
        async def one(task_id):
            while True:
                try:
                    results[task_id] = (await client.wait(task_id, timeout=30)).status.value
                    return
                except (httpx.TransportError, HubHTTPError):
                    await asyncio.sleep(0.1)  # the hub is down: ask again once it is back

        await asyncio.wait_for(asyncio.gather(*(one(t) for t in ids)), 100)
    print(json.dumps(results))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
"""


def stored_events(db: Path) -> dict[int, tuple[str | None, int | None, str, str]]:
    """id -> (task_id, seq, disposition, dedupe_key), read without disturbing the writer."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT id, task_id, seq, disposition, dedupe_key FROM events")
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


async def test_ten_sigkills_under_load_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    env = {
        "HUB_SECRET": "chaos-secret",
        "HUB_API_KEY": API_KEY,
        "HUB_DATABASE_URL": f"sqlite:///{db}",
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_SSE_RETRY_MS": "100",  # clients come back quickly after each restart
    }
    server = HubProcess(env, port=free_port())  # one port: callback URLs stay valid
    await asyncio.to_thread(server.start)
    rng = random.Random(6)
    stats: Counter[str] = Counter()
    acked: dict[int, str] = {}  # event id -> task id, for every 2xx answer
    everything = Follower()
    one_task = Follower()
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
        ) as api:
            tasks = [
                (await api.post("/v1/tasks", json={"provider": "generic"})).json()
                for _ in range(TASKS)
            ]
        ids = [t["id"] for t in tasks]
        waiter = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WAITER, server.url, API_KEY, *ids,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        client = HubClient(server.url, api_key=API_KEY, timeout=5, max_backoff=0.5)
        watched = tasks[0]
        token = watched["events_url"].split("token=", 1)[1]
        followers = [
            asyncio.create_task(everything.follow(client, last_event_id=0)),
            asyncio.create_task(one_task.follow(client, task_id=watched["id"], token=token)),
        ]
        progress_over = asyncio.Event()
        async with httpx.AsyncClient(timeout=5) as hooks, asyncio.timeout(90):
            workers = [
                asyncio.create_task(
                    _provider(hooks, tasks[i::WORKERS], progress_over, acked, stats)
                )
                for i in range(WORKERS)
            ]
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.3, 1.2))
                server.kill()
                stats["kills"] += 1
                await asyncio.to_thread(server.start)
                _assert_acked_stored(db, acked)  # after each restart, nothing is lost
            progress_over.set()
            await asyncio.gather(*workers)
            out, _ = await waiter.communicate()
            results = json.loads(out)
            await everything.reach(max(s for _, s, _, _ in stored_events(db).values() if s))
            await followers[1]  # a task stream ends after the terminal event
        followers[0].cancel()
        await client.aclose()
    finally:
        server.stop()

    events = stored_events(db)
    lost = _assert_acked_stored(db, acked)
    applied = [(task, key) for task, seq, _, key in events.values() if seq is not None]
    seqs = sorted(seq for _, seq, _, _ in events.values() if seq is not None)
    dispositions = Counter(disposition for _, _, disposition, _ in events.values())
    print(
        f"\nchaos: {stats['kills']} SIGKILLs; sent {stats['sent']} requests for "
        f"{stats['webhooks']} webhooks, acknowledged {stats['acked']}, stored {len(events)} "
        f"events {dict(dispositions)}, lost {lost}; SSE: {len(everything.seqs)} events, no gap, "
        f"no repeat; waiter process: {dict(Counter(results.values()))}"
    )
    assert stats["kills"] == KILLS
    assert lost == 0
    assert len(applied) == len(set(applied)), "an event was applied (and fanned out) twice"
    assert seqs == list(range(1, len(seqs) + 1)), "the fan-out log has a gap"
    assert everything.seqs == seqs, "the resumed stream missed or repeated an event"
    assert everything.resets == one_task.resets == 0
    # The task stream opens with the task's state as of one id, then every later event.
    opened_at = one_task.snapshots[0] or 0
    watched_seqs = sorted(s for t, s, _, _ in events.values() if t == watched["id"] and s)
    assert one_task.seqs == [s for s in watched_seqs if s > opened_at]
    assert results == dict.fromkeys(ids, "succeeded")


class Follower:
    """Records the id of every event a (resuming) stream yields."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.snapshots: list[int | None] = []
        self.resets = 0
        self._target: int | None = None
        self._reached = asyncio.Event()

    async def follow(self, client: HubClient, **params: Any) -> None:
        async for message in client.stream(**params):
            if message.kind == "event" and message.id is not None:
                self.seqs.append(message.id)
                if self._target is not None and message.id >= self._target:
                    self._reached.set()
            elif message.kind == "state":
                self.snapshots.append(message.id)
            else:
                self.resets += 1  # the resume position was lost

    async def reach(self, seq: int) -> None:
        """Return once the stream has yielded ``seq``."""
        self._target = seq
        if self.seqs and self.seqs[-1] >= seq:
            return
        await self._reached.wait()


async def _provider(
    client: httpx.AsyncClient,
    tasks: list[dict[str, Any]],
    progress_over: asyncio.Event,
    acked: dict[int, str],
    stats: Counter[str],
) -> None:
    """Progress reports for ``tasks`` until told to stop, then each one's result."""
    n = 0
    while not progress_over.is_set():
        for task in tasks:
            n += 1
            body = {"status": "running", "progress": n % 100, "delivery_id": f"p{n}"}
            await _deliver(client, task, body, acked, stats)
    for task in tasks:
        done = {"status": "succeeded", "delivery_id": "done", "outputs": [{"url": "u.png"}]}
        await _deliver(client, task, done, acked, stats)


async def _deliver(
    client: httpx.AsyncClient,
    task: dict[str, Any],
    body: dict[str, Any],
    acked: dict[int, str],
    stats: Counter[str],
) -> None:
    """Post until answered 2xx, like a provider that retries."""
    stats["webhooks"] += 1
    while True:
        stats["sent"] += 1
        try:
            answer = await client.post(task["callback_url"], json=body)
        except httpx.TransportError:
            await asyncio.sleep(0.05)  # killed under us: not acknowledged, so send it again
            continue
        if answer.status_code >= 500:  # starting or stopping
            await asyncio.sleep(0.05)
            continue
        assert answer.status_code == 200, answer.text
        stats["acked"] += 1
        acked[answer.json()["event_id"]] = task["id"]
        return


def _assert_acked_stored(db: Path, acked: dict[int, str]) -> int:
    stored = stored_events(db)
    lost = [i for i, task_id in acked.items() if i not in stored or stored[i][0] != task_id]
    assert not lost, f"{len(lost)} acknowledged webhooks are not in the database"
    return len(lost)
