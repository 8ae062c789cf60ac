"""ImagineAPI's API (Directus): ``POST /items/images/`` and ``GET /items/images/{id}``.

Bearer token. The webhook URL is set once per account in the dashboard, not per request, so
submit sends no callback URL but ``ref`` = the hub task id, which every webhook echoes. All four
images are upscaled automatically (``upscaled_urls``): there are no actions. Directus answers
403 for an item that does not exist as for one the token may not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.providers.client import (
    Accepted,
    Fetched,
    ProviderClient,
    ProviderNotFound,
    ProviderUnavailable,
)
from hub.providers.imagineapi import parse_item


class ImagineApiClient(ProviderClient):
    """An ImagineAPI (Directus) user token."""

    slug = "imagineapi"
    callback_field = None

    async def submit(
        self, prompt: str, *, callback_url: str | None, ref: str, options: Mapping[str, Any]
    ) -> Accepted:
        payload = {**options, "prompt": prompt, "ref": ref}
        item = await self._call("POST", "/items/images/", payload)
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise ProviderUnavailable(self.slug, "created item without an id", body=item)
        return Accepted(item_id, item)

    async def fetch(self, provider_task_id: str) -> Fetched:
        item = await self._call("GET", f"/items/images/{provider_task_id}", None)
        return Fetched(parse_item(item), item)

    async def _call(self, method: str, path: str, payload: Any) -> dict[str, Any]:
        response = await self.request(method, path, json=payload)
        body = self.body(response)
        if response.status_code == 403 and method == "GET":
            raise ProviderNotFound(self.slug, f"no readable item at {path}", body=body)
        if response.status_code not in (200, 201, 204):
            self.fail(response.status_code, _message(body), body=body, headers=response.headers)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ProviderUnavailable(self.slug, "answer without a data object", body=body)
        return data


def _message(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("message")
        if isinstance(message, str) and message:
            return message[:2000]
    return "request failed"
