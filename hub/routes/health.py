"""``/healthz`` (the process answers) and ``/readyz`` (store and bus answer)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from hub.core import Hub

READY_TIMEOUT_S = 2.0


def routes(hub: Hub) -> list[Route]:
    """The health routes of ``hub``."""

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        for name, ping in (("store", hub.store.ping), ("bus", hub.bus.ping)):
            try:
                await asyncio.wait_for(ping(), READY_TIMEOUT_S)
                checks[name] = "ok"
            except Exception as exc:  # any failure means not ready; say which and why
                checks[name] = f"down: {type(exc).__name__}"
        ready = hub.running and all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    return [Route("/healthz", healthz), Route("/readyz", readyz)]
