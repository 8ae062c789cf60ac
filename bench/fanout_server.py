"""The servers the fan-out benchmark measures, each run as its own process.

``hub``: the real hub (SQLite, group commit, dispatcher, ``/v1/events``); events arrive as
webhooks. ``baseline``: the usual minimal hand-rolled broadcast: ``POST /publish`` encodes
the frame once and puts it in one ``asyncio.Queue`` per subscriber; ``GET /events`` is a
``StreamingResponse`` draining its queue.

    python -m bench.fanout_server hub|baseline PORT DATA_DIR
"""

from __future__ import annotations

import asyncio
import resource
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

API_KEY = "bench-key"


def baseline_app() -> Starlette:
    """One queue per subscriber; each frame encoded once and shared."""
    queues: set[asyncio.Queue[bytes]] = set()
    counter = [0]

    async def publish(request: Request) -> JSONResponse:
        body = await request.body()
        counter[0] += 1
        frame = b"id: %d\ndata: %s\n\n" % (counter[0], body)
        for queue in queues:
            queue.put_nowait(frame)
        return JSONResponse({"ok": True, "id": counter[0]})

    async def events(request: Request) -> StreamingResponse:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        queues.add(queue)

        async def frames() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 3000\n\n"
                while True:
                    yield await queue.get()
            finally:
                queues.discard(queue)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)

    return Starlette(
        routes=[Route("/publish", publish, methods=["POST"]), Route("/events", events)]
    )


def hub_app(data_dir: Path) -> ASGIApp:
    """The hub as ``callback-hub serve`` runs it, with room for 20,000 streams."""
    from hub import Hub, Settings

    settings = Settings(
        secret=("bench-secret",),
        api_key=API_KEY,
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'hub.db'}",
        sse_max_streams=20_000,
        log_level="warning",
    )
    return Hub(settings).app


def main() -> None:
    kind, port, data_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    app = hub_app(data_dir) if kind == "hub" else baseline_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=8192,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
