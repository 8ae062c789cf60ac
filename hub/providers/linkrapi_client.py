"""LinkrAPI's API: ``/api/v1/imagine``, ``/api/v1/fetch/{task_id}`` and ``/api/v1/action``.

Bearer ``lkr_`` key; errors are ``{"detail": …}`` (400 content policy or empty prompt, 401,
403 suspended hold account, 502 Discord unreachable). One hold account runs three fast jobs at
once. Actions are named ``upsample1``-``4``, ``variation1``-``4`` and ``reroll``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.providers.client import Accepted, Fetched, ProviderClient, ProviderUnavailable, message_of
from hub.providers.linkrapi import LinkrApiAdapter

_ADAPTER = LinkrApiAdapter()


class LinkrApiClient(ProviderClient):
    """A LinkrAPI hold account."""

    slug = "linkrapi"
    callback_field = "webhook_url"
    concurrency = 3
    actions = frozenset({"upscale", "variation", "reroll"})

    async def submit(
        self, prompt: str, *, callback_url: str | None, ref: str, options: Mapping[str, Any]
    ) -> Accepted:
        payload: dict[str, Any] = {**options, "prompt": prompt}
        if callback_url:
            payload["webhook_url"] = callback_url
        return await self._start("/api/v1/imagine", payload)

    async def fetch(self, provider_task_id: str) -> Fetched:
        response = await self.request("GET", f"/api/v1/fetch/{provider_task_id}")
        body = self.body(response)
        if response.status_code != 200 or not isinstance(body, dict):
            self.fail(response.status_code, _detail(body), body=body, headers=response.headers)
        return Fetched(_ADAPTER.parse_webhook(body), body)

    async def action(
        self,
        provider_task_id: str,
        kind: str,
        index: int | None,
        *,
        callback_url: str | None,
        ref: str,
    ) -> Accepted:
        name = (
            "reroll" if kind == "reroll" else f"{'upsample' if kind == 'upscale' else kind}{index}"
        )
        payload: dict[str, Any] = {"task_id": provider_task_id, "action": name}
        if callback_url:
            payload["webhook_url"] = callback_url
        return await self._start("/api/v1/action", payload)

    async def _start(self, path: str, payload: dict[str, Any]) -> Accepted:
        response = await self.request("POST", path, json=payload)
        body = self.body(response)
        if response.status_code != 200:
            self.fail(response.status_code, _detail(body), body=body, headers=response.headers)
        task_id = body.get("task_id") if isinstance(body, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderUnavailable(self.slug, "submit answer without a task_id", body=body)
        return Accepted(task_id, body)


def _detail(body: Any) -> str:
    return message_of(body, "detail", "message", "error", default="request failed")
