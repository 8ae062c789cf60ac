"""The receivers the ingest benchmark compares the hub with, as ASGI apps.

* ``dict_of_events``: the seed's webhook receiver: a dict of ``asyncio.Event`` keyed by task
  id, nothing written to disk (it loses everything on a restart);
* ``bare_json``: a Starlette route that parses the JSON body and answers, the ceiling for any
  Starlette endpoint that reads a JSON webhook.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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
