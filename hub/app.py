"""The ASGI application: routes, JSON errors for every failure, and the hub's lifespan."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from hub.errors import HubError
from hub.http import error_response
from hub.routes import events, health, hooks, metrics, openapi, tasks

if TYPE_CHECKING:
    from hub.core import Hub

logger = logging.getLogger("hub.app")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def create_app(hub: Hub) -> ASGIApp:
    """The ASGI app serving ``hub``: webhooks first, then the Starlette router.

    Its lifespan starts and stops the hub.
    """
    route_list: list[BaseRoute] = [
        *health.routes(hub),
        *metrics.routes(hub),
        *tasks.routes(hub),
        *events.routes(hub),
        *openapi.routes(hub),
    ]

    async def hub_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubError)
        if exc.status_code >= 500:
            logger.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc.status_code, exc.code, exc.message, getattr(exc, "headers", None))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal error"}}, status_code=500
        )

    router = Starlette(
        routes=route_list,
        exception_handlers={
            HubError: hub_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
        lifespan=hub.lifespan,
    )
    app: ASGIApp = router
    origins = [o.strip() for o in hub.settings.cors_origins.split(",") if o.strip()]
    if origins:
        # Browser pages on these origins may follow streams (EventSource) and read the API;
        # GET only, and no cookies: stream tokens travel in the URL or a Bearer header.
        app = CORSMiddleware(
            router,
            allow_origins=origins,
            allow_methods=["GET"],
            allow_headers=["Authorization", "Last-Event-ID", "Cache-Control"],
        )
    return hooks.HookEndpoint(hub, app)
