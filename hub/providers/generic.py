"""``generic``: a body already in the hub's own event shape, for any other provider.

::

    {"status": "running", "progress": 40, "provider_task_id": "abc",
     "outputs": [{"url": "https://…", "role": "image", "index": 0}],
     "error": {"category": "moderation", "message": "…", "code": "…"},
     "delivery_id": "evt_123"}

Only ``status`` is required; it must be one of the hub's statuses.
"""

from __future__ import annotations

from typing import Any

from hub.errors import PayloadError
from hub.models import ErrorCategory, ErrorInfo, Output, Status, Update
from hub.providers.base import Adapter, progress, text

_ROLES = {"grid", "image", "upscale", "video", "thumbnail", "preview"}


class GenericAdapter(Adapter):
    """Webhooks that already speak the hub's event model."""

    slug = "generic"

    def parse_webhook(self, body: dict[str, Any]) -> Update:
        raw_status = body.get("status")
        if not isinstance(raw_status, str):
            raise PayloadError("'status' is required and must be a string")
        try:
            status = Status(raw_status)
        except ValueError as exc:
            allowed = ", ".join(s.value for s in Status)
            raise PayloadError(f"'status' must be one of {allowed}") from exc
        return Update(
            status=status,
            provider_status=raw_status,
            provider_task_id=text(body.get("provider_task_id"), 200),
            progress=progress(body.get("progress")),
            outputs=_outputs(body.get("outputs")),
            error=_error(body.get("error"), status),
            client_ref=text(body.get("client_ref"), 200),
            delivery_id=text(body.get("delivery_id"), 200),
        )


def _outputs(value: Any) -> tuple[Output, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PayloadError("'outputs' must be a list")
    outputs = []
    for item in value[:64]:
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise PayloadError("each output needs a string 'url'")
        role = item.get("role", "image")
        index = item.get("index")
        if not isinstance(role, str) or role not in _ROLES:  # a list or dict is unhashable
            raise PayloadError(f"output 'role' must be one of {', '.join(sorted(_ROLES))}")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise PayloadError("output 'index' must be an integer")
        outputs.append(Output(item["url"][:4096], role, index))
    return tuple(outputs)


def _error(value: Any, status: Status) -> ErrorInfo | None:
    if value is None:
        if status is Status.FAILED:
            return ErrorInfo(ErrorCategory.UNKNOWN, "failed")
        return None
    if not isinstance(value, dict):
        raise PayloadError("'error' must be an object")
    try:
        category = ErrorCategory(value.get("category", "unknown"))
    except ValueError as exc:
        raise PayloadError("unknown error 'category'") from exc
    return ErrorInfo(
        category=category,
        message=text(value.get("message")) or category.value,
        code=text(value.get("code"), 200),
        retryable=value.get("retryable") is True,
    )
