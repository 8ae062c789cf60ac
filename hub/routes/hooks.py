"""Webhook ingress: ``POST /hooks/{provider}/{token}`` and the account-level form.

Order of work: refuse oversized or non-JSON bodies, verify the token (nothing else is done
for a forged one), parse, normalize, commit, and only then answer 2xx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.http import ApiError, read_json_object
from hub.models import Source
from hub.providers import get_adapter

if TYPE_CHECKING:
    from hub.core import Hub


def routes(hub: Hub) -> list[Route]:
    """The webhook routes of ``hub``."""
    limit = hub.settings.max_body_bytes

    async def task_hook(request: Request) -> JSONResponse:
        provider = request.path_params["provider"]
        adapter = get_adapter(provider)
        task_id = hub.signer.verify_callback(request.path_params["token"], provider)
        body = await read_json_object(request, limit)
        update = adapter.parse_webhook(body)
        result = await hub.receive(provider, update, task_id=task_id, raw=body)
        return _accepted(result.events[0].id, result.events[0].disposition.value)

    async def account_hook(request: Request) -> JSONResponse:
        provider = request.path_params["provider"]
        adapter = get_adapter(provider)
        hub.signer.verify_account_key(request.path_params["key"], provider)
        body = await read_json_object(request, limit)
        update = adapter.parse_webhook(body)
        if not (update.provider_task_id or update.client_ref):
            raise ApiError(422, "uncorrelated", "the body names no task id or ref")
        result = await hub.receive(provider, update, raw=body, source=Source.WEBHOOK)
        return _accepted(result.events[0].id, result.events[0].disposition.value)

    return [
        Route("/hooks/{provider}/account/{key}", account_hook, methods=["POST"]),
        Route("/hooks/{provider}/{token}", task_hook, methods=["POST"]),
    ]


def _accepted(event_id: int, disposition: str) -> JSONResponse:
    return JSONResponse({"ok": True, "event_id": event_id, "disposition": disposition})
