"""The task API under ``/v1`` (Bearer ``HUB_API_KEY``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.errors import PayloadError, WaitTimeout
from hub.http import ApiError, read_json_object, request_base, require_api_key
from hub.models import Status, Task
from hub.providers import get_adapter
from hub.routes import submit
from hub.store.base import TaskFilter

if TYPE_CHECKING:
    from hub.core import Hub

MAX_PAGE = 200
MAX_DEADLINE_S = 100 * 365 * 86_400


def routes(hub: Hub) -> list[Route]:
    """The ``/v1`` task routes of ``hub``."""
    limit = hub.settings.max_body_bytes

    def public(task: Task, request: Request) -> dict[str, Any]:
        base = request_base(request)
        data = task.to_dict()
        data["callback_url"] = hub.callback_url(task, base_url=base)
        data["events_url"] = hub.events_url(task, base_url=base)
        return data

    async def create(request: Request) -> JSONResponse:
        require_api_key(request, hub.settings.api_key)
        body = await read_json_object(request, limit)
        provider = _string(body, "provider", required=True)
        assert provider is not None
        get_adapter(provider)
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise PayloadError("'metadata' must be an object")
        deadline = body.get("deadline_s")
        if deadline is not None and (
            isinstance(deadline, bool)
            or not isinstance(deadline, int | float)
            or not 0 < deadline <= MAX_DEADLINE_S  # a huge int would overflow now + deadline
        ):
            raise PayloadError(
                "'deadline_s' must be a positive number of seconds, at most 100 years"
            )
        task = await (
            submit.submit_task(hub, request, provider, body, metadata=metadata, deadline_s=deadline)
            if body.get("submit") is not None  # register, then start it at the provider
            else hub.register(
                provider,
                external_id=_string(body, "external_id"),
                metadata=metadata,
                deadline_s=deadline,
                parent_id=_string(body, "parent_id"),
            )
        )
        return JSONResponse(public(task, request), status_code=201)

    async def list_tasks(request: Request) -> JSONResponse:
        require_api_key(request, hub.settings.api_key)
        query = request.query_params
        status = query.get("status")
        try:
            status_filter = Status(status) if status is not None else None  # "" is no status
        except ValueError:
            raise ApiError(400, "bad_request", f"unknown status {status!r}") from None
        page = _int_param(query.get("limit"), "limit", default=50, low=1, high=MAX_PAGE)
        tasks = await hub.list_tasks(
            TaskFilter(
                provider=query.get("provider"),
                status=status_filter,
                external_id=query.get("external_id"),
                parent_id=query.get("parent_id"),
                before=query.get("cursor"),
                limit=page,
            )
        )
        next_cursor = tasks[-1].id if len(tasks) == page else None
        return JSONResponse(
            {"tasks": [public(t, request) for t in tasks], "next_cursor": next_cursor}
        )

    async def get_task(request: Request) -> JSONResponse:
        require_api_key(request, hub.settings.api_key)
        task_id = request.path_params["task_id"]
        wait = request.query_params.get("wait")
        if wait is not None:
            seconds = _float_param(wait, "wait", high=hub.settings.wait_max_s)
            try:
                task = await hub.wait(task_id, timeout=seconds)
            except WaitTimeout as exc:
                task = exc.task
        else:
            task = await hub.get(task_id)
        data = public(task, request)
        data["events"] = [e.to_dict() for e in await hub.events(task_id)]
        return JSONResponse(data)

    async def bind(request: Request) -> JSONResponse:
        require_api_key(request, hub.settings.api_key)
        body = await read_json_object(request, limit)
        external_id = _string(body, "external_id", required=True)
        assert external_id is not None
        task = await hub.bind(request.path_params["task_id"], external_id)
        return JSONResponse(public(task, request))

    async def account_hook(request: Request) -> JSONResponse:
        require_api_key(request, hub.settings.api_key)
        provider = request.path_params["provider"]
        if not get_adapter(provider).account_level:
            raise ApiError(400, "not_account_level", f"{provider} takes a callback URL per task")
        url = hub.account_hook_url(provider, base_url=request_base(request))
        return JSONResponse({"provider": provider, "url": url})

    return [
        Route("/v1/tasks", create, methods=["POST"]),
        Route("/v1/tasks", list_tasks, methods=["GET"]),
        Route("/v1/tasks/{task_id}", get_task, methods=["GET"]),
        Route("/v1/tasks/{task_id}/bind", bind, methods=["POST"]),
        Route("/v1/providers/{provider}/account-hook", account_hook, methods=["GET"]),
        *submit.routes(hub, public),
    ]


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise PayloadError(f"'{key}' is required")
        return None
    if not isinstance(value, str) or not value or len(value) > 200:
        raise PayloadError(f"'{key}' must be a non-empty string of at most 200 characters")
    return value


def _int_param(raw: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"'{name}' must be between {low} and {high}")
    return value


def _float_param(raw: str, name: str, *, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"'{name}' must be a number of seconds") from None
    if not 0 <= value <= high:
        raise ApiError(400, "bad_request", f"'{name}' must be between 0 and {high:g} seconds")
    return value
