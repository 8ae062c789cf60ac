"""midjourney-api.com: ``{"status": 0, "data": {"taskId", "status", "image", "images"}}``.

The inner numeric status is 0 running, 1 succeeded, 2 failed (the same values as
``job-status``); the outer one is the envelope's result code (0 = ok).
"""

from __future__ import annotations

from typing import Any

from hub.errors import PayloadError
from hub.models import Output, Status, Update
from hub.providers.base import Adapter, classify_error, indexed, progress, text, url_list

STATUSES = {0: Status.RUNNING, 1: Status.SUCCEEDED, 2: Status.FAILED}


class MidjourneyApiAdapter(Adapter):
    """midjourney-api.com (``API-KEY`` header, ``hookUrl`` per job)."""

    slug = "midjourney-api"

    def parse_webhook(self, body: dict[str, Any]) -> Update:
        data = body.get("data")
        if not isinstance(data, dict):
            raise PayloadError("midjourney-api webhook without a 'data' object")
        return parse_job(data, envelope_message=text(body.get("message")))


def parse_job(data: dict[str, Any], *, envelope_message: str | None = None) -> Update:
    """Normalize one job object, as in a webhook's ``data`` or a ``job-status`` list item."""
    raw = data.get("status")
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise PayloadError("midjourney-api job without a numeric 'status'")
    try:
        code = int(raw)
    except ValueError as exc:
        raise PayloadError("midjourney-api job 'status' must be 0, 1 or 2") from exc
    status = STATUSES.get(code)
    outputs: tuple[Output, ...] = ()
    if status is Status.SUCCEEDED:
        grid = text(data.get("image"), 4096)
        outputs = ((Output(grid, "grid", None),) if grid else ()) + indexed(
            url_list(data.get("images")), "image"
        )
    error = None
    if status is Status.FAILED:
        message = (
            text(data.get("message")) or text(data.get("error")) or envelope_message or "job failed"
        )
        error = classify_error(message, str(code))
    return Update(
        status=status,
        provider_status=str(code),
        provider_task_id=text(data.get("taskId"), 200),
        progress=progress(data.get("progress")),
        outputs=outputs,
        error=error,
    )
