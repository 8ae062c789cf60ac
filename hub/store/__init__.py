"""Stores, chosen by URL; backends are imported only when used."""

from __future__ import annotations

from hub.errors import ConfigError
from hub.store.base import Store


def store_from_url(url: str, *, sqlite_synchronous: str = "FULL") -> Store:
    """A store for ``sqlite:///path`` or ``postgresql://…``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from hub.store.sqlite import SQLiteStore

        path = url.split("://", 1)[1] if "://" in url else ""
        # sqlite:///relative.db and sqlite:////absolute.db, as in SQLAlchemy URLs.
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ConfigError("HUB_DATABASE_URL sqlite:/// needs a file path")
        return SQLiteStore(path, synchronous=sqlite_synchronous)
    if scheme in ("postgres", "postgresql"):
        from hub.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(f"unsupported HUB_DATABASE_URL scheme {scheme!r} (sqlite, postgresql)")


__all__ = ["Store", "store_from_url"]
