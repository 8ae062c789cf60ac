"""The receivers the ingest benchmark compares the hub with, as ASGI apps.

* ``dict_of_events``: the usual hand-written webhook receiver: a dict of ``asyncio.Event``
  keyed by task id, nothing written to disk (it loses everything on a restart);
* ``bare_json``: a Starlette route that parses the JSON body and answers, the ceiling for any
  Starlette endpoint that reads a JSON webhook;
* ``durable_floor``: the least a receiver can do and still answer only after the webhook is
  durable: a plain ASGI endpoint that parses the body, INSERTs it as one row (SQLite, WAL,
  ``synchronous=FULL``) and answers when the group commit carrying it has been fsynced. No
  tokens, no correlation, no state: the ceiling for any durable receiver on this machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

pending_tasks: dict[str, asyncio.Event] = {}
task_results: dict[str, dict[str, Any]] = {}


async def _dict_of_events(request: Request) -> JSONResponse:
    data = json.loads(await request.body())
    task_id = request.path_params["token"]
    event = pending_tasks.setdefault(task_id, asyncio.Event())
    task_results[task_id] = data
    event.set()
    return JSONResponse({"ok": True})


async def _bare_json(request: Request) -> JSONResponse:
    json.loads(await request.body())
    return JSONResponse({"ok": True})


dict_of_events = Starlette(
    routes=[Route("/hooks/{provider}/{token}", _dict_of_events, methods=["POST"])]
)
bare_json = Starlette(routes=[Route("/hooks/{provider}/{token}", _bare_json, methods=["POST"])])


class _GroupCommit:
    """Rows INSERTed on the event loop; one COMMIT (the fsync) per batch on a thread."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS hooks (id INTEGER PRIMARY KEY, path, body)")
        self.fsync = ThreadPoolExecutor(max_workers=1)
        self.queue: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self.wake = asyncio.Event()
        self.runner = asyncio.create_task(self._run())

    async def add(self, path: str, body: bytes) -> None:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((path, body, future))
        self.wake.set()
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.queue:
                batch, self.queue = self.queue, []
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany(
                    "INSERT INTO hooks (path, body) VALUES (?, ?)", [(p, b) for p, b, _ in batch]
                )
                await loop.run_in_executor(self.fsync, self.db.execute, "COMMIT")
                for _, _, future in batch:
                    future.set_result(None)


_floor: _GroupCommit | None = None


async def durable_floor(scope: Scope, receive: Receive, send: Send) -> None:
    global _floor
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            folder = os.environ.get("BENCH_DATA_DIR") or tempfile.mkdtemp()
            _floor = _GroupCommit(os.path.join(folder, "floor.db"))
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    assert _floor is not None
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    try:
        json.loads(body)
    except ValueError:
        status = 400
    else:
        await _floor.add(scope["path"], body)
        status = 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"ok":true}'})
