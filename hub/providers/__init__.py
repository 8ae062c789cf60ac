"""Provider adapters, keyed by slug."""

from __future__ import annotations

from hub.errors import UnknownProvider
from hub.providers.base import Adapter
from hub.providers.generic import GenericAdapter
from hub.providers.imagineapi import ImagineApiAdapter
from hub.providers.linkrapi import LinkrApiAdapter
from hub.providers.midapi import MidapiAdapter
from hub.providers.midjourney_api import MidjourneyApiAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.slug: adapter
    for adapter in (
        LinkrApiAdapter(),
        MidjourneyApiAdapter(),
        ImagineApiAdapter(),
        MidapiAdapter(),
        GenericAdapter(),
    )
}


def get_adapter(slug: str) -> Adapter:
    """The adapter for ``slug``; raises :class:`UnknownProvider`."""
    try:
        return ADAPTERS[slug]
    except KeyError:
        raise UnknownProvider(slug) from None


__all__ = ["ADAPTERS", "Adapter", "get_adapter"]
