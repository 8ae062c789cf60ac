"""``GET /metrics``: Prometheus text format (keep it off the public internet; see deploy/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from hub.core import Hub


def routes(hub: Hub) -> list[Route]:
    """The metrics route of ``hub``."""

    async def metrics(request: Request) -> Response:
        return Response(hub.metrics.render(), media_type=hub.metrics.content_type)

    return [Route("/metrics", metrics)]
