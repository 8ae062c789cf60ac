"""midjourney-api.com's API: ``submit-jobs`` and ``job-status`` under ``/midjourney/v1``.

``API-KEY`` header; every answer is ``{"status", "message", "data"}`` with status 0 for
success. Status 1001 means the account has no quota left and 1002 that it already runs its
maximum of jobs (10), which is worth retrying later. Jobs report 0 (running), 1 (done) and
2 (failed); the documents show no actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.models import ErrorCategory
from hub.providers.client import (
    Accepted,
    Fetched,
    ProviderClient,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    message_of,
)
from hub.providers.midjourney_api import parse_job

NO_QUOTA = 1001
CONCURRENCY_LIMIT = 1002


class MidjourneyApiClient(ProviderClient):
    """A midjourney-api.com account."""

    slug = "midjourney-api"
    callback_field = "hookUrl"
    concurrency = 10

    def headers(self) -> dict[str, str]:
        return {"API-KEY": self.api_key}

    async def submit(
        self, prompt: str, *, callback_url: str | None, ref: str, options: Mapping[str, Any]
    ) -> Accepted:
        payload: dict[str, Any] = {"mode": "fast", **options, "prompt": prompt}
        if callback_url:
            payload["hookUrl"] = callback_url
        data = await self._call("/midjourney/v1/submit-jobs", payload)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderUnavailable(self.slug, "submit answer without data.taskId", body=data)
        return Accepted(task_id, data)

    async def fetch(self, provider_task_id: str) -> Fetched:
        data = await self._call("/midjourney/v1/job-status", {"taskIds": [provider_task_id]})
        for job in data if isinstance(data, list) else []:
            if isinstance(job, dict) and job.get("taskId") == provider_task_id:
                return Fetched(parse_job(job), job)
        raise ProviderNotFound(self.slug, f"job-status does not list {provider_task_id}")

    async def _call(self, path: str, payload: dict[str, Any]) -> Any:
        response = await self.request("POST", path, json=payload)
        body = self.body(response)
        message = message_of(body, "message", default="request failed")
        if response.status_code != 200:
            self.fail(response.status_code, message, body=body, headers=response.headers)
        code = body.get("status") if isinstance(body, dict) else None
        if code == 0:
            return body.get("data")
        if code == NO_QUOTA:
            raise ProviderRejected(self.slug, message, category=ErrorCategory.QUOTA, body=body)
        if code == CONCURRENCY_LIMIT:
            raise ProviderRateLimited(self.slug, message, body=body)
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
            self.fail(code, message, body=body)
        raise ProviderUnavailable(self.slug, f"unexpected envelope status {code!r}", body=body)
