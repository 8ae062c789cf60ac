"""ImagineAPI (Directus): one account-level webhook URL, called on create and every update.

Body: ``{"event": "images.items.create" | "images.items.update", "payload": {item}}``; the
item is the same as ``GET /items/images/{id}``'s ``data``. Statuses pending, in-progress,
completed, failed. While in progress ``url`` is a partial render; once completed it is the grid
and ``upscaled_urls`` hold the four upscales. ``ref`` is the caller's own id, echoed back.
"""

from __future__ import annotations

from typing import Any

from hub.errors import PayloadError
from hub.models import Output, Status, Update
from hub.providers.base import Adapter, classify_error, indexed, progress, text, url_list

STATUSES = {
    "pending": Status.QUEUED,
    "in-progress": Status.RUNNING,
    "in_progress": Status.RUNNING,
    "completed": Status.SUCCEEDED,
    "failed": Status.FAILED,
}


class ImagineApiAdapter(Adapter):
    """ImagineAPI (Directus bearer token, one webhook URL per account)."""

    slug = "imagineapi"
    account_level = True

    def parse_webhook(self, body: dict[str, Any]) -> Update:
        item = body.get("payload", body.get("data"))
        if not isinstance(item, dict):
            raise PayloadError("ImagineAPI webhook without a 'payload' object")
        return parse_item(item)


def parse_item(item: dict[str, Any]) -> Update:
    """Normalize one image item, from a webhook or ``GET /items/images/{id}``."""
    raw_status = text(item.get("status"))
    if raw_status is None:
        raise PayloadError("ImagineAPI item without a 'status'")
    status = STATUSES.get(raw_status.lower())
    url = text(item.get("url"), 4096)
    outputs: tuple[Output, ...] = ()
    if status is Status.SUCCEEDED:
        outputs = ((Output(url, "grid", None),) if url else ()) + indexed(
            url_list(item.get("upscaled_urls")), "upscale"
        )
    elif status is Status.RUNNING and url:
        outputs = (Output(url, "preview", None),)
    error = None
    if status is Status.FAILED:
        error = classify_error(text(item.get("error")) or "image generation failed")
    return Update(
        status=status,
        provider_status=raw_status,
        provider_task_id=text(item.get("id"), 200),
        progress=progress(item.get("progress")),
        outputs=outputs,
        error=error,
        client_ref=text(item.get("ref"), 200),
    )
