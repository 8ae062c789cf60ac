"""midapi.ai's API: ``/api/v1/mj/generate``, ``/api/v1/mj/record-info``, ``/api/v1/mj/upscale``.

Bearer key; every answer is ``{"code", "msg", "data"}``, and a ``code`` other than 200 is read
like an HTTP status (400 bad parameters, 401 key, 402 credits, 429, 500). ``taskType`` defaults
to ``mj_txt2img``. Upscale takes the grid's task id and an image ``index`` 1-4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.providers.client import (
    Accepted,
    ActionUnsupported,
    Fetched,
    ProviderClient,
    ProviderUnavailable,
    message_of,
)
from hub.providers.midapi import parse_record


class MidapiClient(ProviderClient):
    """A midapi.ai account."""

    slug = "midapi"
    callback_field = "callBackUrl"
    actions = frozenset({"upscale"})

    async def submit(
        self, prompt: str, *, callback_url: str | None, ref: str, options: Mapping[str, Any]
    ) -> Accepted:
        payload: dict[str, Any] = {"taskType": "mj_txt2img", **options, "prompt": prompt}
        if callback_url:
            payload["callBackUrl"] = callback_url
        return _accepted(self.slug, await self._call("POST", "/api/v1/mj/generate", payload))

    async def fetch(self, provider_task_id: str) -> Fetched:
        response = await self.request(
            "GET", "/api/v1/mj/record-info", params={"taskId": provider_task_id}
        )
        data = self._data(response)
        if not isinstance(data, dict):
            raise ProviderUnavailable(self.slug, "record-info without a data object", body=data)
        return Fetched(parse_record(data), data)

    async def action(
        self,
        provider_task_id: str,
        kind: str,
        index: int | None,
        *,
        callback_url: str | None,
        ref: str,
    ) -> Accepted:
        if kind != "upscale":
            raise ActionUnsupported(f"midapi offers upscale only, not {kind}")
        payload: dict[str, Any] = {"taskId": provider_task_id, "index": index}
        if callback_url:
            payload["callBackUrl"] = callback_url
        return _accepted(self.slug, await self._call("POST", "/api/v1/mj/upscale", payload))

    async def _call(self, method: str, path: str, payload: dict[str, Any]) -> Any:
        return self._data(await self.request(method, path, json=payload))

    def _data(self, response: Any) -> Any:
        body = self.body(response)
        message = message_of(body, "msg", "message", default="request failed")
        if response.status_code != 200:
            self.fail(response.status_code, message, body=body, headers=response.headers)
        code = body.get("code") if isinstance(body, dict) else None
        if code != 200:
            status = code if isinstance(code, int) and not isinstance(code, bool) else 502
            self.fail(status, message, body=body)
        return body.get("data")


def _accepted(slug: str, data: Any) -> Accepted:
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise ProviderUnavailable(slug, "answer without data.taskId", body=data)
    return Accepted(task_id, data)
