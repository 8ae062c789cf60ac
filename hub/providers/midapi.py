"""midapi.ai: terminal-only callbacks ``{"code", "msg", "data": {"taskId", "resultUrls"}}``.

``code`` 200 is success, anything else a failure described by ``msg``. The status endpoint
(``record-info``) uses ``successFlag``: 0 running, 1 succeeded, 2 and 3 failed.
"""

from __future__ import annotations

from typing import Any

from hub.errors import PayloadError
from hub.models import ErrorCategory, ErrorInfo, Status, Update
from hub.providers.base import Adapter, classify_error, grid_actions, indexed, text, url_list

FLAGS = {0: Status.RUNNING, 1: Status.SUCCEEDED, 2: Status.FAILED, 3: Status.FAILED}


class MidapiAdapter(Adapter):
    """midapi.ai (Bearer key, ``callBackUrl`` per task)."""

    slug = "midapi"

    def parse_webhook(self, body: dict[str, Any]) -> Update:
        code = body.get("code")
        if isinstance(code, bool) or not isinstance(code, int):
            raise PayloadError("midapi callback without a numeric 'code'")
        data = body.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise PayloadError("midapi callback 'data' must be an object")
        task_id = text(data.get("taskId"), 200)
        if code == 200:
            urls = url_list(data.get("resultUrls")) or url_list(
                data.get("resultUrls"), key="resultUrl"
            )
            return Update(
                status=Status.SUCCEEDED,
                provider_status="200",
                provider_task_id=task_id,
                outputs=indexed(urls, "image"),
                actions=grid_actions() if len(urls) > 1 else (),
            )
        message = text(body.get("msg")) or f"generation failed with code {code}"
        return Update(
            status=Status.FAILED,
            provider_status=str(code),
            provider_task_id=task_id,
            error=_error(message, str(code)),
        )


def parse_record(data: dict[str, Any]) -> Update:
    """Normalize a ``record-info`` ``data`` object (used when polling)."""
    flag = data.get("successFlag")
    if isinstance(flag, bool) or not isinstance(flag, int):
        raise PayloadError("midapi record without a numeric 'successFlag'")
    status = FLAGS.get(flag)
    result = data.get("resultInfoJson")
    urls = url_list(result.get("resultUrls"), key="resultUrl") if isinstance(result, dict) else []
    error = None
    if status is Status.FAILED:
        message = text(data.get("errorMessage")) or "generation failed"
        error = _error(message, text(data.get("errorCode")))
    return Update(
        status=status,
        provider_status=str(flag),
        provider_task_id=text(data.get("taskId"), 200),
        outputs=indexed(urls, "image") if status is Status.SUCCEEDED else (),
        actions=grid_actions() if status is Status.SUCCEEDED and len(urls) > 1 else (),
        error=error,
    )


def _error(message: str, code: str | None) -> ErrorInfo:
    info = classify_error(message, code)
    if info.category is ErrorCategory.UNKNOWN and code and code.startswith("5"):
        return ErrorInfo(ErrorCategory.PROVIDER_INTERNAL, message, code, retryable=True)
    return info
