"""HTTP plumbing shared by the routes: JSON errors, bounded bodies, API-key auth."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from hub.errors import HubError, PayloadError


class ApiError(HubError):
    """An HTTP error with a status code and a machine-readable code."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


def error_response(
    status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"error": {"code": ..., "message": ...}}`` with ``status_code``."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status_code, headers=headers
    )


def require_api_key(request: Request, api_key: str | None) -> None:
    """Check ``Authorization: Bearer <HUB_API_KEY>`` in constant time."""
    if not api_key:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), api_key.encode()
    ):
        raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer <api key>' is required")


def request_base(request: Request) -> str:
    """The URL the hub's routes are served under for this request, mount prefix included.

    ``request.base_url`` names the outermost app; ``root_path`` carries every mount prefix
    (and a proxy's ``--root-path``), which callback URLs must keep.
    """
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes with 413 before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body is over {limit} bytes")
    chunks = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise ApiError(413, "body_too_large", f"request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """A JSON object body: 415 for another content type, 400 for bad UTF-8 or JSON, 422 for
    JSON that is not an object."""
    if not _is_json(request.headers.get("content-type", "")):
        raise ApiError(415, "unsupported_media_type", "the body must be application/json")
    return parse_json_object(await read_body(request, limit))


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a body that must be a UTF-8 JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_utf8", "the body is not valid UTF-8") from None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise PayloadError("the body must be a JSON object")
    return value
