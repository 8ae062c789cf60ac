"""Event streams: ``GET /v1/events`` (API key) and ``GET /v1/tasks/{id}/events`` (task token).

Both are plain ASGI endpoints: a stream outlives any request object, so only what the stream
needs is kept (see :mod:`hub.sse.stream`). Refusals happen before the response starts and are
the usual JSON errors.
"""

from __future__ import annotations

import hmac
import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hub.http import ApiError, error_response, require_api_key
from hub.sse.catchup import CatchUp, LogCatchUp, TaskCatchUp
from hub.sse.fanout import StreamsFull
from hub.sse.filters import EventFilter
from hub.sse.frames import retry_frame
from hub.sse.stream import HEADERS, EventStream, install_quiet_cut
from hub.sse.subscriber import Subscriber

if TYPE_CHECKING:
    from hub.core import Hub

_TASK_STREAM_PARAMS = {"token", "last_event_id", "stay_open"}
_MAX_SEQ = 2**63 - 1


def routes(hub: Hub) -> list[Route]:
    """The stream routes of ``hub``."""
    install_quiet_cut()
    return [
        Route("/v1/events", AllEvents(hub), methods=["GET"]),
        Route("/v1/tasks/{task_id}/events", TaskEvents(hub), methods=["GET"]),
    ]


class _StreamEndpoint(ABC):
    """Admission, the cap and the opening, shared by both routes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._per_token: dict[str, int] = {}  # open streams by subscriber token

    @abstractmethod
    async def open(self, request: Request) -> tuple[Subscriber, CatchUp]:
        """Authorize and parse; raise :class:`~hub.errors.HubError` to refuse."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        sub, catch_up = await self.open(request)
        token = getattr(request.state, "stream_token", None)
        cap = self.hub.settings.sse_max_per_token
        if token is None or not cap:
            await self._serve(scope, receive, send, sub, catch_up)
            return
        # Per subscriber token (a URL handed to a browser): one leaked URL cannot take the
        # whole HUB_SSE_MAX_STREAMS. API-key streams are the operator's and only count there.
        if self._per_token.get(token, 0) >= cap:
            raise ApiError(
                429,
                "too_many_streams_for_token",
                f"this token already has {cap} open streams",
                {"Retry-After": str(max(1, math.ceil(self.hub.settings.sse_retry_ms / 1000)))},
            )
        self._per_token[token] = self._per_token.get(token, 0) + 1
        try:
            await self._serve(scope, receive, send, sub, catch_up)
        finally:
            left = self._per_token.pop(token) - 1
            if left:
                self._per_token[token] = left

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, sub: Subscriber, catch_up: CatchUp
    ) -> None:
        hub = self.hub
        fanout = hub.fanout
        retry_ms = hub.settings.sse_retry_ms
        if fanout.closing or not hub.running:
            # Stopping: an empty stream that tells the client to come back (to another
            # replica). A 503 would make browsers' EventSource give up for good.
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": retry_frame(retry_ms)})
            return
        try:
            fanout.admit(sub)
        except StreamsFull as exc:
            retry_after = str(max(1, math.ceil(retry_ms / 1000)))
            response = error_response(503, exc.code, exc.message, {"Retry-After": retry_after})
            await response(scope, receive, send)
            return
        try:
            await catch_up.prepare()
        except BaseException:
            fanout.release(sub)
            raise
        if catch_up.status == 204:
            fanout.release(sub)
            await Response(status_code=204)(scope, receive, send)
            return
        sub.floor = catch_up.floor
        await EventStream(fanout, sub, catch_up, retry_ms=retry_ms)(scope, receive, send)

    def buffer_limit(self) -> int:
        return self.hub.settings.sse_buffer_bytes


class AllEvents(_StreamEndpoint):
    """``GET /v1/events``: every applied event, filtered; Bearer ``HUB_API_KEY``."""

    async def open(self, request: Request) -> tuple[Subscriber, CatchUp]:
        require_api_key(request, self.hub.settings.api_key)
        event_filter = EventFilter.from_query(request.query_params.multi_items())
        sub = Subscriber(event_filter, limit=self.buffer_limit())
        catch_up = LogCatchUp(
            self.hub.store,
            self.hub.fanout.metadata,
            event_filter,
            _last_event_id(request),
            is_open=lambda: sub.closed is None,
        )
        return sub, catch_up


class TaskEvents(_StreamEndpoint):
    """``GET /v1/tasks/{id}/events``: one task; its subscriber token or the API key."""

    async def open(self, request: Request) -> tuple[Subscriber, CatchUp]:
        task_id = request.path_params["task_id"]
        self._authorize(request, task_id)
        unknown = set(request.query_params) - _TASK_STREAM_PARAMS
        if unknown:
            raise ApiError(400, "bad_request", f"unknown parameter {sorted(unknown)[0]!r}")
        until_terminal = not _flag(request.query_params.get("stay_open"), "stay_open")
        sub = Subscriber(
            EventFilter(task_ids=frozenset({task_id})),
            limit=self.buffer_limit(),
            task_id=task_id,
            until_terminal=until_terminal,
        )
        catch_up = TaskCatchUp(
            self.hub.store, task_id, _last_event_id(request), until_terminal=until_terminal
        )
        return sub, catch_up

    def _authorize(self, request: Request, task_id: str) -> None:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        bearer = bearer.strip() if scheme.lower() == "bearer" else ""
        api_key = self.hub.settings.api_key
        if bearer and api_key and hmac.compare_digest(bearer.encode(), api_key.encode()):
            return
        token = request.query_params.get("token") or bearer
        if not token:
            if not api_key:
                return
            raise ApiError(
                401, "unauthorized", "a subscriber token (?token=… or Bearer) is required"
            )
        self.hub.signer.verify_subscriber(token, task_id)
        request.state.stream_token = token  # counted against HUB_SSE_MAX_PER_TOKEN


def _last_event_id(request: Request) -> int | None:
    """``Last-Event-ID`` (sent by EventSource on reconnect) or ``?last_event_id=``."""
    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        raw = request.query_params.get("last_event_id")
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    if len(raw) > 19 or not raw.isascii() or not raw.isdigit() or int(raw) > _MAX_SEQ:
        raise ApiError(400, "bad_request", "Last-Event-ID must be an event id (an integer >= 0)")
    return int(raw)


def _flag(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in {"1", "true", "yes", ""}:
        return True
    if value in {"0", "false", "no"}:
        return False
    raise ApiError(400, "bad_request", f"'{name}' must be true or false")
