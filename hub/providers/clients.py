"""Which providers the hub can call, and with what account: the clients by slug.

A client exists for a provider when its key is configured (``HUB_<PROVIDER>_KEY``); its base
URL (``HUB_<PROVIDER>_URL``) defaults to the real service, so pointing the same code at the
simulator is only a matter of settings. One :class:`httpx.AsyncClient` serves every provider.
"""

from __future__ import annotations

import httpx

from hub.config import Settings
from hub.errors import HubError
from hub.providers.client import ProviderClient
from hub.providers.imagineapi_client import ImagineApiClient
from hub.providers.linkrapi_client import LinkrApiClient
from hub.providers.midapi_client import MidapiClient
from hub.providers.midjourney_api_client import MidjourneyApiClient

CLIENTS: dict[str, type[ProviderClient]] = {
    cls.slug: cls for cls in (LinkrApiClient, MidjourneyApiClient, ImagineApiClient, MidapiClient)
}


class ProviderNotConfigured(HubError):
    """The hub has no API client or no key for the provider."""

    status_code = 400
    code = "provider_not_configured"


def setting_prefix(slug: str) -> str:
    """The settings prefix of a provider: ``midjourney-api`` → ``midjourney_api``."""
    return slug.replace("-", "_")


class ProviderClients:
    """The configured provider clients, sharing one HTTP connection pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http: httpx.AsyncClient | None = None
        self._clients: dict[str, ProviderClient] = {}

    async def start(self) -> None:
        """Open the connection pool."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.provider_timeout_s)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
        self._http = None
        self._clients.clear()

    def get(self, slug: str) -> ProviderClient | None:
        """The client for ``slug``, or None when there is none or it has no key."""
        client = self._clients.get(slug)
        if client is not None:
            return client
        cls = CLIENTS.get(slug)
        if cls is None or self._http is None:
            return None
        prefix = setting_prefix(slug)
        key = getattr(self.settings, f"{prefix}_key", None)
        if not key:
            return None
        client = cls(self._http, getattr(self.settings, f"{prefix}_url"), key)
        self._clients[slug] = client
        return client

    def require(self, slug: str) -> ProviderClient:
        """The client for ``slug``; raises :class:`ProviderNotConfigured`."""
        client = self.get(slug)
        if client is not None:
            return client
        if slug not in CLIENTS:
            raise ProviderNotConfigured(f"the hub has no API client for {slug}")
        if self._http is None:
            raise ProviderNotConfigured("the hub is not started (did you forget `async with hub`?)")
        variable = f"HUB_{setting_prefix(slug).upper()}_KEY"
        raise ProviderNotConfigured(f"no key for {slug}: set {variable}")
