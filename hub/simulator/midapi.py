"""Simulated midapi.ai: ``/api/v1/mj/generate``, ``/api/v1/mj/record-info``, ``/api/v1/mj/upscale``.

Bearer key; every answer is the ``{"code", "msg", "data"}`` envelope, with the HTTP status
equal to ``code`` (400 bad parameters, 401 no valid key, 429, 500). ``record-info`` reports
``successFlag`` 0 (generating), 1 (succeeded), 2 (task failed) or 3 (created, generation
failed). The callback goes to ``callBackUrl`` once, when the task ends: ``{"code": 200, "msg",
"data": {"taskId", "promptJson", "resultUrls"}}`` or a failure code with ``msg``. ``speed``
relaxed runs at a third of fast, turbo at twice. A banned prompt is not refused up front (⚠):
the task fails with code 400. The upscale callback URL field is assumed to be ``callBackUrl``
as for generate (⚠).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.simulator.engine import Job, Outcome, Phase
from hub.simulator.sim import SimError, Simulator, bearer, json_object

SLUG = "midapi"
TASK_TYPES = ("mj_txt2img", "mj_img2img", "mj_video")
SPEEDS = {"relaxed": 3.0, "fast": 1.0, "turbo": 0.5}
ASPECT_RATIOS = (
    "1:2", "9:16", "2:3", "3:4", "5:6", "6:5", "4:3", "3:2", "16:9", "2:1", "1:1",
)  # fmt: skip
VERSIONS = ("7", "6.1", "6", "5.2", "5.1", "niji6")
_FLAG = {Phase.PENDING: 0, Phase.RUNNING: 0, Phase.COMPLETED: 1, Phase.FAILED: 3, Phase.TIMEOUT: 3}


def record(job: Job) -> dict[str, Any]:
    """``record-info``'s ``data`` for one task."""
    done = job.phase is Phase.COMPLETED
    failed = job.phase in (Phase.FAILED, Phase.TIMEOUT)
    flag = 2 if job.outcome is Outcome.MODERATION and failed else _FLAG[job.phase]
    return {
        "taskId": job.id,
        "taskType": job.options.get("taskType", "mj_upscale" if job.single else "mj_txt2img"),
        "paramJson": json.dumps({"prompt": job.prompt, **job.options}),
        "successFlag": flag,
        "resultInfoJson": {"resultUrls": [{"resultUrl": u} for u in _urls(job)]} if done else None,
        "errorCode": job.extra.get("error_code") if failed else None,
        "errorMessage": job.error if failed else None,
        "createTime": int(job.created_at * 1000),
        "completeTime": int(job.finished_at * 1000) if job.finished_at else None,
    }


def _urls(job: Job) -> list[str]:
    return [job.grid_url] if job.single else job.image_urls


def routes(sim: Simulator) -> list[Route]:
    """The midapi.ai routes of ``sim``."""
    return _Midapi(sim).routes()


class _Midapi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def error(self, exc: SimError) -> JSONResponse:
        body = {"code": exc.status, "msg": exc.message, "data": None}
        return JSONResponse(body, exc.status, headers=exc.headers)

    def ok(self, data: Any) -> JSONResponse:
        return JSONResponse({"code": 200, "msg": "success", "data": data})

    def authenticate(self, request: Request) -> str:
        key = bearer(request)
        if not self.sim.accepts(SLUG, key):
            raise SimError(401, "You do not have access permissions")
        self.sim.admit(SLUG, key)
        return key

    def notify(self, job: Job) -> None:
        if job.phase is Phase.FAILED and job.outcome is not Outcome.MODERATION:
            job.error = job.error or "Generation failed, please try again later"
            job.extra["error_code"] = 500
        if job.phase is Phase.TIMEOUT:
            job.error = "Generation timed out"
            job.extra["error_code"] = 500
        if not job.webhook_url or not job.phase.done:
            return  # callbacks are terminal only
        data = {
            "taskId": job.id,
            "promptJson": json.dumps({"prompt": job.prompt, **job.options}),
            "resultUrls": _urls(job) if job.phase is Phase.COMPLETED else [],
        }
        if job.phase is Phase.COMPLETED:
            body = {"code": 200, "msg": "success", "data": data}
        else:
            body = {"code": job.extra.get("error_code", 500), "msg": job.error, "data": data}
        self.sim.deliverer.send(job.id, SLUG, job.webhook_url, body, terminal=True)

    async def generate(self, request: Request) -> JSONResponse:
        self.sim.count("midapi.generate")
        try:
            key = self.authenticate(request)
            body = await _body(request)
            options = _generate_options(body)
            hook = _callback(body)
        except SimError as exc:
            return self.error(exc)
        prompt = options.pop("prompt")
        job = self.sim.new_job(
            SLUG,
            key,
            prompt,
            request,
            id="mj_task_" + uuid.uuid4().hex[:16],
            webhook_url=hook,
            speed=SPEEDS[options.get("speed", "fast")],
            options=options,
        )
        if self.sim.blocked_term(prompt):
            job.outcome = Outcome.MODERATION
            job.error = "The prompt violates the content policy"
            job.extra["error_code"] = 400
        self.sim.engine.start(job, self.notify)
        return self.ok({"taskId": job.id})

    async def record_info(self, request: Request) -> JSONResponse:
        self.sim.count("midapi.record-info")
        try:
            key = self.authenticate(request)
            job = self.sim.jobs.get(request.query_params.get("taskId", ""))
            if job is None or job.provider != SLUG or job.key != key:
                raise SimError(404, "task not found")
        except SimError as exc:
            return self.error(exc)
        return self.ok(record(job))

    async def upscale(self, request: Request) -> JSONResponse:
        self.sim.count("midapi.upscale")
        try:
            key = self.authenticate(request)
            body = await _body(request)
            parent = self.sim.jobs.get(str(body.get("taskId")))
            if parent is None or parent.provider != SLUG or parent.key != key:
                raise SimError(404, "task not found")
            index = body.get("index")
            if not _int_between(index, 1, 4):
                raise SimError(400, "index must be an integer from 1 to 4")
            if parent.phase is not Phase.COMPLETED or parent.single:
                raise SimError(400, "only a completed image grid can be upscaled")
            hook = _callback(body)
        except SimError as exc:
            return self.error(exc)
        job = self.sim.new_job(
            SLUG,
            key,
            parent.prompt,
            request,
            id="mj_task_" + uuid.uuid4().hex[:16],
            action="upscale",
            webhook_url=hook,
            parent_id=parent.id,
            index=index,
            options={"taskType": "mj_upscale", "index": index},
        )
        self.sim.engine.start(job, self.notify)
        return self.ok({"taskId": job.id})

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/mj/generate", self.generate, methods=["POST"]),
            Route("/api/v1/mj/record-info", self.record_info, methods=["GET"]),
            Route("/api/v1/mj/upscale", self.upscale, methods=["POST"]),
        ]


async def _body(request: Request) -> dict[str, Any]:
    body = await json_object(request)
    if body is None:
        raise SimError(400, "malformed JSON: the body must be an object")
    return body


def _callback(body: dict[str, Any]) -> str | None:
    hook = body.get("callBackUrl")
    if hook is not None and (
        not isinstance(hook, str) or not hook.startswith(("http://", "https://"))
    ):
        raise SimError(400, "callBackUrl must be an http(s) URL")
    return hook


def _generate_options(body: dict[str, Any]) -> dict[str, Any]:
    task_type = body.get("taskType")
    if task_type not in TASK_TYPES:
        raise SimError(400, f"taskType must be one of {', '.join(TASK_TYPES)}")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise SimError(400, "prompt is required")
    options: dict[str, Any] = {"taskType": task_type, "prompt": prompt}
    for name, allowed in (("speed", SPEEDS), ("aspectRatio", ASPECT_RATIOS), ("version", VERSIONS)):
        value = body.get(name)
        if value is None:
            continue
        if value not in allowed:
            raise SimError(400, f"{name} must be one of {', '.join(allowed)}")
        options[name] = value
    if task_type != "mj_txt2img":
        url = body.get("fileUrl")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SimError(400, f"fileUrl is required for {task_type}")
        options["fileUrl"] = url
    stylization = body.get("stylization")
    if stylization is not None:
        if not _int_between(stylization, 0, 1000):
            raise SimError(400, "stylization must be an integer from 0 to 1000")
        options["stylization"] = stylization
    return options


def _int_between(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
