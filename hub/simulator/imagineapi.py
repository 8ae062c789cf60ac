"""Simulated ImagineAPI (Directus): ``POST /items/images/`` and ``GET /items/images/{id}``.

Bearer token; items have the statuses pending, in-progress, completed and failed, a numeric
``progress`` while in progress (with ``url`` a partial render), and when completed the grid in
``url`` plus the four upscales in ``upscaled_urls``. ``ref`` is the caller's own id, echoed.
Webhooks go to one URL per account (``imagineapi_webhooks``), on create and on every update:
``{"event": "images.items.create" | "images.items.update", "payload": item}``. Errors are
Directus errors, ``{"errors": [{"message", "extensions": {"code"}}]}``; Directus answers 403 for
an item that does not exist as for one the token may not read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.simulator.engine import Job, Outcome, Phase
from hub.simulator.sim import SimError, Simulator, bearer, json_object

SLUG = "imagineapi"
_STATUS = {
    Phase.PENDING: "pending",
    Phase.RUNNING: "in-progress",
    Phase.COMPLETED: "completed",
    Phase.FAILED: "failed",
    Phase.TIMEOUT: "failed",
}
_CODES = {
    400: "INVALID_PAYLOAD",
    401: "INVALID_CREDENTIALS",
    403: "FORBIDDEN",
    429: "REQUESTS_EXCEEDED",
    500: "INTERNAL_SERVER_ERROR",
}


def item(job: Job) -> dict[str, Any]:
    """The image item, as ``GET /items/images/{id}`` returns it in ``data``."""
    done = job.phase is Phase.COMPLETED
    running = job.phase is Phase.RUNNING
    upscales = [f"{job.id}-u{i}" for i in range(4)] if done else []
    url = job.grid_url if done else (job.preview_url if running and job.progress else None)
    return {
        "id": job.id,
        "prompt": job.prompt,
        "results": job.extra.get("results") if done else None,
        "user_created": job.extra.get("user"),
        "date_created": datetime.fromtimestamp(job.created_at, UTC).isoformat(),
        "status": _STATUS[job.phase],
        "progress": job.progress if running else None,
        "url": url,
        "error": job.error if job.phase in (Phase.FAILED, Phase.TIMEOUT) else None,
        "upscaled_urls": [job.asset(f"{i}.png") for i in range(4)] if done else None,
        "upscaled": upscales,
        "ref": job.ref,
    }


def routes(sim: Simulator) -> list[Route]:
    """The ImagineAPI routes of ``sim``."""
    return _ImagineApi(sim).routes()


class _ImagineApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def error(self, exc: SimError) -> JSONResponse:
        code = exc.code or _CODES.get(exc.status, "INTERNAL_SERVER_ERROR")
        body = {"errors": [{"message": exc.message, "extensions": {"code": code}}]}
        return JSONResponse(body, exc.status, headers=exc.headers)

    def authenticate(self, request: Request) -> str:
        token = bearer(request)
        if not self.sim.accepts(SLUG, token):
            raise SimError(401, "Invalid user credentials.")
        self.sim.admit(SLUG, token)
        return token

    def notify(self, job: Job) -> None:
        if job.phase is Phase.FAILED:
            job.error = job.error or "Midjourney failed to generate the image"
        if job.phase is Phase.TIMEOUT:
            job.error = "Job timed out"
        hooks = self.sim.config.imagineapi_webhooks
        url = hooks.get(job.key) or hooks.get("*")
        if not url:
            return
        event = "images.items.update" if job.extra.get("announced") else "images.items.create"
        job.extra["announced"] = True
        body = {"event": event, "payload": item(job)}
        self.sim.deliverer.send(job.id, SLUG, url, body, terminal=job.phase.done)

    async def create(self, request: Request) -> JSONResponse:
        self.sim.count("imagineapi.create")
        try:
            token = self.authenticate(request)
            body = await json_object(request)
            if body is None:
                raise SimError(400, "Invalid payload. The body must be a JSON object.")
            prompt = body.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise SimError(400, 'Invalid payload. "prompt" is required.')
            ref = body.get("ref")
            if ref is not None and not isinstance(ref, str):
                raise SimError(400, 'Invalid payload. "ref" must be a string.')
        except SimError as exc:
            return self.error(exc)
        job = self.sim.new_job(SLUG, token, prompt, request, id=str(uuid.uuid4()), ref=ref)
        job.extra.update(user=str(uuid.uuid5(uuid.NAMESPACE_OID, token)), results=str(uuid.uuid4()))
        if self.sim.blocked_term(prompt):
            job.outcome = Outcome.MODERATION
            job.error = "Banned prompt: the prompt contains a word Midjourney does not allow"
        self.sim.engine.start(job, self.notify)
        return JSONResponse({"data": item(job)})

    async def read(self, request: Request) -> JSONResponse:
        self.sim.count("imagineapi.read")
        try:
            token = self.authenticate(request)
            job = self.sim.jobs.get(request.path_params["id"])
            if job is None or job.provider != SLUG or job.key != token:
                raise SimError(403, "You don't have permission to access this.")
        except SimError as exc:
            return self.error(exc)
        return JSONResponse({"data": item(job)})

    def routes(self) -> list[Route]:
        return [
            Route("/items/images/", self.create, methods=["POST"]),
            Route("/items/images", self.create, methods=["POST"]),
            Route("/items/images/{id}", self.read, methods=["GET"]),
        ]
