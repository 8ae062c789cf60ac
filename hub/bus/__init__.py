"""Buses, chosen by URL; backends are imported only when used."""

from __future__ import annotations

from hub.bus.base import Bus, EventSink
from hub.errors import ConfigError


def bus_from_url(url: str) -> Bus:
    """A bus for ``memory://``, ``redis://…`` or ``postgresql://…`` (LISTEN/NOTIFY)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from hub.bus.memory import MemoryBus

        return MemoryBus()
    if scheme in ("redis", "rediss"):
        from hub.bus.redis import RedisBus

        return RedisBus(url)
    if scheme in ("postgres", "postgresql"):
        from hub.bus.postgres import PostgresBus

        return PostgresBus(url)
    raise ConfigError(f"unsupported HUB_BROKER_URL scheme {scheme!r} (memory, redis, postgresql)")


__all__ = ["Bus", "EventSink", "bus_from_url"]
