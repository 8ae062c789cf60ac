"""Webhook ingress: ``POST /hooks/{provider}/{token}`` and ``/hooks/{provider}/account/{key}``.

This is the hot path, so it is a plain ASGI endpoint in front of the Starlette router rather
than a route: Starlette's request/response objects and middleware stack cost more than the
rest of the work together (measured with the ingest benchmark). Everything else goes to the
router unchanged.

Order of work: check the method and content type, verify the token (nothing else is done for
a forged one), read the body within its size limit, parse, normalize, commit, and only then
answer 2xx.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.errors import HubError
from hub.http import ApiError, is_json_content_type, parse_json_object
from hub.limits import BodyDeadlines, RateLimiter
from hub.models import Source
from hub.providers import ADAPTERS, get_adapter

if TYPE_CHECKING:
    from hub.core import Hub

logger = logging.getLogger("hub.hooks")

PREFIX = "/hooks/"
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_JSON_HEADERS = [(b"content-type", b"application/json")]


class HookEndpoint:
    """Serves webhook POSTs itself and hands every other request to ``app``."""

    def __init__(self, hub: Hub, app: ASGIApp) -> None:
        self.hub = hub
        self.app = app
        self.limiter = RateLimiter.from_settings(hub.settings)
        self.deadlines = BodyDeadlines(hub.settings.body_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        parts = path[len(PREFIX) :].split("/") if path.startswith(PREFIX) else []
        if len(parts) == 2 and all(parts):
            provider, token, account = parts[0], parts[1], False
        elif len(parts) == 3 and parts[1] == "account" and parts[0] and parts[2]:
            provider, token, account = parts[0], parts[2], True
        else:
            if scope["method"] not in _BODILESS:  # every route's body has the same deadline
                receive = self.deadlines.guard(receive)
            await self.app(scope, receive, send)
            return
        headers = [*_JSON_HEADERS]
        try:
            if self.limiter is not None:  # before anything else: forged tokens count too
                client = scope.get("client")
                self.limiter.check(client[0] if client else "")
            if scope["method"] != "POST":
                headers.append((b"allow", b"POST"))
                raise ApiError(405, "method_not_allowed", "webhooks are POSTed")
            guarded = self.deadlines.guard(receive)
            body, disposition = await self._ingest(scope, guarded, provider, token, account)
            status = 200
            self._count(provider, disposition)
        except HubError as exc:
            self._count(provider, exc.code)
            status = exc.status_code
            body = _error_body(exc.code, exc.message)
            headers.extend(
                (k.lower().encode(), v.encode())
                for k, v in (getattr(exc, "headers", None) or {}).items()
            )
        except Exception:
            logger.exception("unhandled error on a webhook for %s", provider)
            status, body = 500, _error_body("internal", "internal error")
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _count(self, provider: str, outcome: str) -> None:
        # The provider segment is client input: only known slugs become label values, so
        # junk URLs cannot grow the metric's cardinality.
        self.hub.metrics.webhook(provider if provider in ADAPTERS else "unknown", outcome)

    async def _ingest(
        self, scope: Scope, receive: Receive, provider: str, token: str, account: bool
    ) -> tuple[bytes, str]:
        hub = self.hub
        adapter = get_adapter(provider)
        content_type, content_length = _headers(scope)
        if not is_json_content_type(content_type):
            raise ApiError(415, "unsupported_media_type", "the body must be application/json")
        task_id: str | None = None
        if account:
            hub.signer.verify_account_key(token, provider)
        else:
            task_id = hub.signer.verify_callback(token, provider)
        raw = await _read_body(receive, content_length, hub.settings.max_body_bytes)
        update = adapter.parse_webhook(parse_json_object(raw))
        if account and not (update.provider_task_id or update.client_ref):
            raise ApiError(422, "uncorrelated", "the body names no task id or ref")
        result = await hub.receive(
            provider, update, task_id=task_id, raw=raw.decode(), source=Source.WEBHOOK
        )
        event = result.events[0]
        disposition: str = event.disposition._value_  # not .value: a slow property
        body = b'{"ok":true,"event_id":%d,"disposition":"%s"}' % (event.id, disposition.encode())
        return body, disposition


def _route_path(scope: Scope) -> str:
    # Under a Mount, ``path`` still holds the mount prefix and ``root_path`` names it.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _headers(scope: Scope) -> tuple[str, int | None]:
    content_type = ""
    length: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise ApiError(400, "bad_request", "Content-Length is not a number") from None
    return content_type, length


async def _read_body(receive: Receive, declared: int | None, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over ``limit``."""
    if declared is not None and declared > limit:
        raise ApiError(413, "body_too_large", f"request body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "client_disconnected", "the client went away mid-body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()
