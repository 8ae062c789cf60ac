"""LinkrAPI: webhooks carry the same task object as ``GET /api/v1/fetch/{task_id}``.

Statuses: pending → queued; processing (and the live API's sending, starting) → running;
completed → succeeded; failed → failed; timeout → failed with category timeout. A grid
(``action`` imagine, variationN, reroll) offers upsample1-4, variation1-4 and reroll.
"""

from __future__ import annotations

import re
from typing import Any

from hub.errors import PayloadError
from hub.models import Action, ErrorCategory, ErrorInfo, Output, Status, Update
from hub.providers.base import (
    Adapter,
    action_from_label,
    classify_error,
    grid_actions,
    indexed,
    progress,
    text,
    url_list,
)

STATUSES = {
    "pending": Status.QUEUED,
    "queued": Status.QUEUED,
    "submitted": Status.QUEUED,
    "starting": Status.RUNNING,
    "sending": Status.RUNNING,
    "processing": Status.RUNNING,
    "in_progress": Status.RUNNING,
    "completed": Status.SUCCEEDED,
    "failed": Status.FAILED,
    "timeout": Status.FAILED,
}
_UPSAMPLE = re.compile(r"^upsample(\d)$")


class LinkrApiAdapter(Adapter):
    """LinkrAPI (Bearer ``lkr_`` keys, ``webhook_url`` per request)."""

    slug = "linkrapi"

    def parse_webhook(self, body: dict[str, Any]) -> Update:
        raw_status = body.get("status")
        if not isinstance(raw_status, str) or not raw_status:
            raise PayloadError("LinkrAPI webhook without a string 'status'")
        status = STATUSES.get(raw_status.lower())
        error = None
        if status is Status.FAILED:
            message = text(body.get("error")) or text(body.get("message")) or raw_status
            if raw_status.lower() == "timeout":
                error = ErrorInfo(ErrorCategory.TIMEOUT, message, "timeout", retryable=True)
            else:
                error = classify_error(message)
        return Update(
            status=status,
            provider_status=raw_status,
            provider_task_id=text(body.get("task_id"), 200),
            progress=progress(body.get("progress")),
            outputs=_outputs(body) if status is Status.SUCCEEDED else (),
            actions=_actions(body) if status is Status.SUCCEEDED else (),
            error=error,
        )


def _outputs(body: dict[str, Any]) -> tuple[Output, ...]:
    action = text(body.get("action")) or "imagine"
    image_url = text(body.get("image_url"), 4096)
    upsample = _UPSAMPLE.match(action)
    if upsample and image_url:
        return (Output(image_url, "upscale", int(upsample.group(1)) - 1),)
    outputs: list[Output] = []
    grid = image_url or text(body.get("grid_url"), 4096)
    if grid:
        outputs.append(Output(grid, "grid", None))
    outputs.extend(indexed(url_list(body.get("images")), "image"))
    return tuple(outputs)


def _actions(body: dict[str, Any]) -> tuple[Action, ...]:
    action = text(body.get("action")) or "imagine"
    if _UPSAMPLE.match(action):
        return ()
    components = body.get("components")
    if isinstance(components, list) and components:
        actions = []
        for item in components[:32]:
            if not isinstance(item, dict):
                continue
            label = text(item.get("label"), 100)
            if label:
                actions.append(action_from_label(label, text(item.get("custom_id"), 200)))
        return tuple(actions)
    refs = {f"upscale{i}": f"upsample{i}" for i in range(1, 5)}
    refs.update({f"variation{i}": f"variation{i}" for i in range(1, 5)})
    refs["reroll"] = "reroll"
    return grid_actions(refs)
