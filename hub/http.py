"""HTTP plumbing shared by the routes: JSON errors, bounded bodies, API-key auth."""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from hub.errors import HubError, PayloadError

#: Deeper JSON is refused with 400: provider bodies nest a few levels, and deeper values would
#: exhaust the recursion limit when a task is serialized (``dataclasses.asdict``).
MAX_JSON_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class ApiError(HubError):
    """An HTTP error with a status code and a machine-readable code."""

    def __init__(
        self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.headers = headers


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


def is_json_content_type(content_type: str) -> bool:
    """Whether a Content-Type header names JSON (``application/json`` or ``*/*+json``)."""
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
    if not is_json_content_type(request.headers.get("content-type", "")):
        raise ApiError(415, "unsupported_media_type", "the body must be application/json")
    return parse_json_object(await read_body(request, limit))


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a body that must be a UTF-8 JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_utf8", "the body is not valid UTF-8") from None
    try:
        # NaN and Infinity are not JSON, and nothing downstream could render them back.
        value = _DECODER.decode(text)
    except ValueError:  # also ints over 4300 digits, which int() refuses
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    except RecursionError:
        raise ApiError(400, "json_too_deep", "the body nests too deep to parse") from None
    if not isinstance(value, dict):
        raise PayloadError("the body must be a JSON object")
    # Both checks are skipped by a C-speed scan for the common body, so the hot path pays ~1 us.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _too_deep(value, MAX_JSON_DEPTH):
        raise ApiError(400, "json_too_deep", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and not _encodable(value):
        raise ApiError(400, "invalid_json", "the body holds an unpaired UTF-16 surrogate")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# json.loads with any option builds a new decoder per call; this is the webhook hot path.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _encodable(value: Any) -> bool:
    # An escaped lone surrogate decodes to a str that cannot be stored or sent as UTF-8.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
