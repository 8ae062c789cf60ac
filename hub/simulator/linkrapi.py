"""Simulated LinkrAPI: ``/api/v1/imagine``, ``/api/v1/fetch/{task_id}``, ``/api/v1/action``.

As its documents say: Bearer ``lkr_`` keys (401 without one, 403 for a suspended hold
account); errors as ``{"detail": …}``; a prompt is NFKD-normalised and checked against a
word-boundary blocklist before anything else happens (400); 502 when Discord cannot be reached;
three fast jobs per key at once, more wait as ``pending``. Webhooks carry the same task object as
``fetch`` and go out when the task completes or fails (every step with ``progress_webhooks``).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.simulator.engine import Job, Phase
from hub.simulator.sim import SimError, Simulator, bearer, json_object

SLUG = "linkrapi"
_STATUS = {
    Phase.PENDING: "pending",
    Phase.RUNNING: "processing",
    Phase.COMPLETED: "completed",
    Phase.FAILED: "failed",
    Phase.TIMEOUT: "timeout",
}
_ACTION = re.compile(r"^(?:upsample|variation)[1-4]$|^reroll$")
_POLICY = (
    "Your prompt contains a term that violates Midjourney's content policy. "
    "Please rephrase and try again."
)


def task_object(job: Job) -> dict[str, Any]:
    """The task as ``GET /api/v1/fetch/{task_id}`` returns it (and as webhooks carry it)."""
    done = job.phase is Phase.COMPLETED
    body: dict[str, Any] = {
        "task_id": job.id,
        "action": job.action,
        "status": _STATUS[job.phase],
        "progress": job.progress,
        "prompt": job.prompt,
        "image_url": job.grid_url if done else None,
        "message_id": job.extra.get("message_id") if done else None,
        "components": _components(job) if done else [],
        "error": job.error if job.phase in (Phase.FAILED, Phase.TIMEOUT) else None,
        "created_at": datetime.fromtimestamp(job.created_at, UTC).isoformat(),
    }
    if done and not job.single:
        body["images"] = job.image_urls
        body["grid_url"] = job.grid_url
    return body


def _components(job: Job) -> list[dict[str, Any]]:
    if job.single:
        return []
    token = job.extra["hash"]
    buttons = [(f"U{i}", f"MJ::JOB::upsample::{i}::{token}") for i in range(1, 5)]
    buttons += [(f"V{i}", f"MJ::JOB::variation::{i}::{token}") for i in range(1, 5)]
    buttons.append(("🔄", f"MJ::JOB::reroll::0::{token}::SOLO"))
    return [{"custom_id": cid, "label": label, "style": 2} for label, cid in buttons]


def routes(sim: Simulator) -> list[Route]:
    """The LinkrAPI routes of ``sim``."""
    return _LinkrApi(sim).routes()


class _LinkrApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def error(self, exc: SimError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, exc.status, headers=exc.headers)

    def authenticate(self, request: Request) -> str:
        key = bearer(request)
        if not key.startswith("lkr_") or not self.sim.accepts(SLUG, key):
            raise SimError(401, "Invalid or missing API key")
        if key in self.sim.config.suspended_keys:
            raise SimError(403, "Hold account is suspended")
        self.sim.admit(SLUG, key)
        return key

    def notify(self, job: Job) -> None:
        if not job.webhook_url:
            return
        terminal = job.phase.done
        if terminal and job.phase is Phase.FAILED:
            job.error = job.error or "Midjourney rejected the job: it could not be processed"
        if terminal and job.phase is Phase.TIMEOUT:
            job.error = job.error or "Task timed out waiting for Midjourney"
        if terminal or (self.sim.config.progress_webhooks and job.phase is Phase.RUNNING):
            self.sim.deliverer.send(
                job.id, SLUG, job.webhook_url, task_object(job), terminal=terminal
            )

    def launch(self, job: Job) -> JSONResponse:
        job.extra.update(hash=uuid.uuid4().hex[:12], message_id=str(uuid.uuid4().int)[:19])
        self.sim.engine.start(job, self.notify, slots=self.sim.config.linkrapi_fast_slots)
        return JSONResponse(
            {"status": "SUCCESS", "task_id": job.id, "message": "Task submitted successfully"}
        )

    async def imagine(self, request: Request) -> JSONResponse:
        self.sim.count("linkrapi.imagine")
        try:
            key = self.authenticate(request)
            body = await _body(request)
            prompt = body.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise SimError(400, "Invalid request: prompt is empty or missing")
            if self.sim.blocked_term(prompt):
                raise SimError(400, _POLICY)
            webhook = _optional_url(body, "webhook_url")
            reference = _optional_url(body, "reference_image")
        except SimError as exc:
            return self.error(exc)
        options = {"reference_image": reference} if reference else {}
        job = self.sim.new_job(
            SLUG, key, prompt, request, id=str(uuid.uuid4()), webhook_url=webhook, options=options
        )
        return self.launch(job)

    async def fetch(self, request: Request) -> JSONResponse:
        self.sim.count("linkrapi.fetch")
        try:
            key = self.authenticate(request)
            job = self.sim.jobs.get(request.path_params["task_id"])
            if job is None or job.provider != SLUG or job.key != key:
                raise SimError(404, "Task not found")
        except SimError as exc:
            return self.error(exc)
        return JSONResponse(task_object(job))

    async def action(self, request: Request) -> JSONResponse:
        self.sim.count("linkrapi.action")
        try:
            key = self.authenticate(request)
            body = await _body(request)
            parent = self.sim.jobs.get(str(body.get("task_id")))
            if parent is None or parent.provider != SLUG or parent.key != key:
                raise SimError(404, "Task not found")
            name = _action_name(body.get("action"), parent)
            if parent.phase is not Phase.COMPLETED or parent.single:
                raise SimError(400, "Actions need a completed grid task")
            webhook = _optional_url(body, "webhook_url")
        except SimError as exc:
            return self.error(exc)
        index = int(name[-1]) if name[-1].isdigit() else None
        job = self.sim.new_job(
            SLUG,
            key,
            parent.prompt,
            request,
            id=str(uuid.uuid4()),
            action=name,
            webhook_url=webhook,
            parent_id=parent.id,
            index=index,
        )
        return self.launch(job)

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/imagine", self.imagine, methods=["POST"]),
            Route("/api/v1/fetch/{task_id}", self.fetch, methods=["GET"]),
            Route("/api/v1/action", self.action, methods=["POST"]),
        ]


async def _body(request: Request) -> dict[str, Any]:
    body = await json_object(request)
    if body is None:
        # LinkrAPI is a FastAPI service: a body it cannot parse is a 422 validation error.
        raise SimError(422, "the request body must be a JSON object")
    return body


def _optional_url(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise SimError(400, f"Invalid request: {name} must be an http(s) URL")
    return value


def _action_name(value: Any, parent: Job) -> str:
    """``upsample1``…``reroll``, or a button custom id of the parent mapped to its name."""
    if not isinstance(value, str):
        raise SimError(400, "Invalid request: action is required")
    if _ACTION.match(value):
        return value
    for button in _components(parent) if parent.phase is Phase.COMPLETED else []:
        if button["custom_id"] == value:
            kind, number = value.split("::")[2:4]
            return "reroll" if kind == "reroll" else f"{kind}{number}"
    raise SimError(400, f"Invalid action {value[:100]!r}")
