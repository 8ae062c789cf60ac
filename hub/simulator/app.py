"""The simulator's ASGI app: the four providers' routes, result images and a control API.

Control routes under ``/_sim`` (no auth; the simulator is a test tool on loopback):
``GET/PATCH /_sim/config`` read or change knobs, ``GET /_sim/jobs``, ``GET /_sim/deliveries``
and ``GET /_sim/calls`` show what happened.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.simulator import imagineapi, linkrapi, midapi, midjourney_api
from hub.simulator.config import ConfigError
from hub.simulator.engine import Phase
from hub.simulator.png import placeholder_png
from hub.simulator.sim import Simulator, json_object

logger = logging.getLogger("hub.simulator")

_ASSET = re.compile(r"^(?:grid|upscale|[0-3]|preview-\d{1,3})\.png$")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def create_app(sim: Simulator | None = None) -> Starlette:
    """An ASGI app serving ``sim`` (a new default one if not given); its lifespan runs it."""
    sim = sim or Simulator()

    async def asset(request: Request) -> Response:
        return _asset(sim, request)

    async def config(request: Request) -> JSONResponse:
        if request.method == "PATCH":
            changes = await json_object(request)
            if changes is None:
                return _error(400, "invalid_json", "the body must be a JSON object")
            try:
                sim.config.update(changes)
            except ConfigError as exc:
                return _error(422, "invalid_config", str(exc))
        return JSONResponse(sim.config.to_dict())

    async def jobs(request: Request) -> JSONResponse:
        return JSONResponse({"jobs": [_job_summary(j) for j in sim.jobs.values()]})

    async def deliveries(request: Request) -> JSONResponse:
        log = sim.deliverer.log
        return JSONResponse(
            {
                "deliveries": [
                    {
                        "job_id": d.job_id,
                        "provider": d.provider,
                        "outcome": d.outcome,
                        "terminal": d.terminal,
                        "status_code": d.status_code,
                        "at": d.at,
                    }
                    for d in log
                ]
            }
        )

    async def calls(request: Request) -> JSONResponse:
        return JSONResponse(dict(sim.calls))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, "http_error", str(exc.detail))

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("simulator error on %s %s", request.method, request.url.path)
        return _error(500, "internal", "internal error")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.close()

    app = Starlette(
        routes=[
            *linkrapi.routes(sim),
            *midjourney_api.routes(sim),
            *imagineapi.routes(sim),
            *midapi.routes(sim),
            Route("/assets/{job_id}/{name}", asset, methods=["GET"]),
            Route("/_sim/config", config, methods=["GET", "PATCH"]),
            Route("/_sim/jobs", jobs, methods=["GET"]),
            Route("/_sim/deliveries", deliveries, methods=["GET"]),
            Route("/_sim/calls", calls, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: unexpected},
        lifespan=lifespan,
    )
    app.state.simulator = sim
    return app


def _asset(sim: Simulator, request: Request) -> Response:
    job = sim.jobs.get(request.path_params["job_id"])
    name = request.path_params["name"]
    if job is None or not _ASSET.match(name):
        return _error(404, "not_found", "no such image")
    finished = job.phase is Phase.COMPLETED
    if name.startswith("preview-"):
        shade = 0.35 + 0.6 * min(100, int(name[8:-4])) / 100
        image = placeholder_png(job.id, grid=True, shade=shade)
    elif not finished:
        return _error(404, "not_found", "the image is not ready")
    elif name == "grid.png":
        image = placeholder_png(job.id, grid=True)
    else:
        seed = job.parent_id if job.single and job.parent_id else job.id
        position = (job.index or 1) - 1 if name == "upscale.png" else int(name[0])
        image = placeholder_png(f"{seed}:{position}", size=256 if job.single else 128)
    return Response(image, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def _job_summary(job: Any) -> dict[str, Any]:
    return {
        "id": job.id,
        "provider": job.provider,
        "action": job.action,
        "phase": job.phase.value,
        "progress": job.progress,
        "outcome": job.outcome.value,
        "parent_id": job.parent_id,
        "prompt": job.prompt,
    }
