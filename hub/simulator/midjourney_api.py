"""Simulated midjourney-api.com: ``/midjourney/v1/submit-jobs`` and ``/midjourney/v1/job-status``.

``API-KEY`` header; the envelope is ``{"status", "message", "data"}`` with status 0 for success,
1001 when the account has no quota and 1002 past the concurrency limit (10 open jobs). Jobs have
the numeric statuses 0 (running), 1 (succeeded) and 2 (failed); ``mode`` is fast or relaxed
(relaxed runs at half speed) and ``timeout`` 300-1200 s (default 600). The webhook goes to
``hookUrl`` when the job finishes: ``{"status": 0, "data": {"taskId", "status", "image",
"images"}}``. Refusing a banned prompt is not documented: the job fails with status 2 (⚠).
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.simulator.engine import Job, Outcome, Phase
from hub.simulator.sim import SimError, Simulator, json_object

SLUG = "midjourney-api"
_ALPHABET = string.ascii_letters + string.digits + "_-"
_CODE = {Phase.PENDING: 0, Phase.RUNNING: 0, Phase.COMPLETED: 1, Phase.FAILED: 2, Phase.TIMEOUT: 2}


def job_object(job: Job) -> dict[str, Any]:
    """One job, as in ``job-status`` ``data[]`` and a webhook's ``data``."""
    done = job.phase is Phase.COMPLETED
    body: dict[str, Any] = {
        "taskId": job.id,
        "status": _CODE[job.phase],
        "image": job.grid_url if done else None,
        "images": job.image_urls if done else [],
    }
    if job.phase in (Phase.FAILED, Phase.TIMEOUT):
        body["message"] = job.error
    return body


def routes(sim: Simulator) -> list[Route]:
    """The midjourney-api.com routes of ``sim``."""
    return _MidjourneyApi(sim).routes()


class _MidjourneyApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def error(self, exc: SimError) -> JSONResponse:
        status = exc.status if exc.status >= 400 else 200  # 1001/1002 come with HTTP 200
        code = int(exc.code) if exc.code else exc.status
        return JSONResponse(
            {"status": code, "message": exc.message, "data": None}, status, headers=exc.headers
        )

    def authenticate(self, request: Request) -> str:
        key = request.headers.get("api-key", "").strip()
        if not self.sim.accepts(SLUG, key):
            raise SimError(401, "invalid API-KEY")
        self.sim.admit(SLUG, key)
        return key

    def notify(self, job: Job) -> None:
        if job.phase is Phase.FAILED:
            job.error = job.error or "job failed"
        if job.phase is Phase.TIMEOUT:
            job.error = "job timeout"
        terminal = job.phase.done
        if job.webhook_url and (
            terminal or (self.sim.config.progress_webhooks and job.phase is Phase.RUNNING)
        ):
            body = {"status": 0, "data": job_object(job), "message": "success"}
            self.sim.deliverer.send(job.id, SLUG, job.webhook_url, body, terminal=terminal)

    async def submit(self, request: Request) -> JSONResponse:
        self.sim.count("midjourney-api.submit-jobs")
        try:
            key = self.authenticate(request)
            body = await _body(request)
            prompt = body.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise SimError(400, "prompt is required")
            mode = body.get("mode", "fast")
            if mode not in ("fast", "relaxed"):
                raise SimError(400, "mode must be 'fast' or 'relaxed'")
            timeout = body.get("timeout", 600)
            if (
                isinstance(timeout, bool)
                or not isinstance(timeout, int)
                or timeout < 300
                or timeout > 1200
            ):
                raise SimError(400, "timeout must be an integer between 300 and 1200")
            hook = body.get("hookUrl")
            if hook is not None and (
                not isinstance(hook, str) or not hook.startswith(("http://", "https://"))
            ):
                raise SimError(400, "hookUrl must be an http(s) URL")
            if self.sim.engine.open_jobs(SLUG, key) >= self.sim.config.mjapi_max_jobs:
                raise SimError(200, "concurrency limit reached", code="1002")
        except SimError as exc:
            return self.error(exc)
        job = self.sim.new_job(
            SLUG,
            key,
            prompt,
            request,
            id="".join(secrets.choice(_ALPHABET) for _ in range(21)),
            webhook_url=hook,
            speed=2.0 if mode == "relaxed" else 1.0,
            timeout_s=float(timeout),
            options={"mode": mode},
        )
        if self.sim.blocked_term(prompt):
            job.outcome = Outcome.MODERATION
            job.error = "banned prompt: the prompt violates the content policy"
        self.sim.engine.start(job, self.notify)
        return JSONResponse({"status": 0, "data": {"taskId": job.id}, "message": "success"})

    async def status(self, request: Request) -> JSONResponse:
        self.sim.count("midjourney-api.job-status")
        try:
            key = self.authenticate(request)
            body = await _body(request)
            ids = body.get("taskIds")
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                raise SimError(400, "taskIds must be a non-empty list of task ids")
            if len(ids) > 100:
                raise SimError(400, "at most 100 taskIds per request")
        except SimError as exc:
            return self.error(exc)
        found = [self.sim.jobs.get(i) for i in ids]
        data = [job_object(j) for j in found if j and j.provider == SLUG and j.key == key]
        return JSONResponse({"status": 0, "data": data, "message": "success"})

    def routes(self) -> list[Route]:
        return [
            Route("/midjourney/v1/submit-jobs", self.submit, methods=["POST"]),
            Route("/midjourney/v1/job-status", self.status, methods=["POST"]),
        ]


async def _body(request: Request) -> dict[str, Any]:
    body = await json_object(request)
    if body is None:
        raise SimError(400, "the request body must be a JSON object")
    return body
