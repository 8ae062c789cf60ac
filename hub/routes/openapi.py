"""``GET /openapi.json``: the API description (:mod:`hub.openapi`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.openapi import document

if TYPE_CHECKING:
    from hub.core import Hub


def routes(hub: Hub) -> list[Route]:
    """The OpenAPI route of ``hub``."""
    encoded: list[bytes] = []

    async def openapi(request: Request) -> Response:
        if not encoded:  # built on first use, after every adapter has registered
            encoded.append(json.dumps(document(), separators=(",", ":")).encode())
        return Response(encoded[0], media_type="application/json")

    return [Route("/openapi.json", openapi)]
