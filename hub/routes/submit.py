"""Submitting over HTTP: the ``submit`` option of ``POST /v1/tasks``, and actions.

``POST /v1/tasks`` with ``"submit": {"prompt": "…", "options": {…}}`` registers the task and
starts it at the provider (see :mod:`hub.submit`); ``POST /v1/tasks/{id}/actions`` with
``{"action": "upscale" | "variation" | "reroll", "index": 1-4}`` starts a follow-up as a child
task. A provider failure answers with the error's status; its message names the failed task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.errors import PayloadError
from hub.http import read_json_object, request_base, require_api_key
from hub.models import Task

if TYPE_CHECKING:
    from collections.abc import Callable

    from hub.core import Hub


def parse_submit(value: Any) -> tuple[str, dict[str, Any]]:
    """``(prompt, options)`` from the ``submit`` object of a create request."""
    if not isinstance(value, dict):
        raise PayloadError("'submit' must be an object with a 'prompt'")
    prompt = value.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 8000:
        raise PayloadError("'submit.prompt' must be a non-empty string of at most 8000 characters")
    options = value.get("options", {})
    if not isinstance(options, dict):
        raise PayloadError("'submit.options' must be an object of provider fields")
    unknown = set(value) - {"prompt", "options"}
    if unknown:
        raise PayloadError(f"unknown 'submit' field(s): {', '.join(sorted(unknown))}")
    return prompt, options


async def submit_task(
    hub: Hub,
    request: Request,
    provider: str,
    body: dict[str, Any],
    *,
    metadata: dict[str, Any] | None,
    deadline_s: float | None,
) -> Task:
    """Register and submit for a create request whose body has a ``submit`` object."""
    if body.get("external_id") is not None or body.get("parent_id") is not None:
        raise PayloadError("'external_id' and 'parent_id' are set by the hub when it submits")
    prompt, options = parse_submit(body["submit"])
    return await hub.submit(
        provider,
        prompt=prompt,
        options=options,
        metadata=metadata,
        deadline_s=deadline_s,
        base_url=request_base(request),
    )


def routes(hub: Hub, public: Callable[[Task, Request], dict[str, Any]]) -> list[Route]:
    """``POST /v1/tasks/{task_id}/actions``; ``public`` renders a task as the API does."""
    limit = hub.settings.max_body_bytes

    async def action(request: Request) -> JSONResponse:
        require_api_key(request, hub.settings.api_key)
        body = await read_json_object(request, limit)
        kind = body.get("action")
        if not isinstance(kind, str):
            raise PayloadError("'action' must be upscale, variation or reroll")
        index = body.get("index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise PayloadError("'index' must be an integer from 1 to 4")
        child = await hub.action(
            request.path_params["task_id"], kind, index=index, base_url=request_base(request)
        )
        return JSONResponse(public(child, request), status_code=201)

    return [Route("/v1/tasks/{task_id}/actions", action, methods=["POST"])]
