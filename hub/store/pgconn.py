"""PostgreSQL plumbing shared by the store and the LISTEN/NOTIFY bus: URLs, errors, migrations.

Imported only when a ``postgresql://`` URL is used; without asyncpg it raises
:class:`~hub.errors.MissingExtraError` naming the install command.
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hub.errors import ConfigError, MissingExtraError

try:
    import asyncpg
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise MissingExtraError("asyncpg", "postgres") from exc

from hub.store.migrations import migrations

__all__ = ["CONNECTION_ERRORS", "DATABASE_ERRORS", "asyncpg", "migrate", "split_url"]

#: Failures that mean "the database is not reachable right now", not "the query is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    # AdminShutdownError ("terminating connection due to administrator command") and
    # CannotConnectNowError ("the database system is starting up") during a restart.
    asyncpg.OperatorInterventionError,
)

#: Every failure the stores turn into :class:`~hub.errors.StoreUnavailable` (503).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)


def split_url(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``(dsn, server_settings, hub_options)`` from a ``postgresql://`` URL.

    asyncpg passes unknown query parameters on as server settings (so ``?search_path=hub``
    works); the libpq form ``?options=-csearch_path%3Dhub`` is translated here, and the hub's
    own parameters (``channel`` for the NOTIFY bus) are taken out.
    """
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    settings: dict[str, str] = {}
    hub_options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "options":
            settings.update(_libpq_options(value))
        elif key == "channel":
            hub_options[key] = value
        else:
            kept.append((key, value))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    dsn = urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
    return dsn, settings, hub_options


def _libpq_options(value: str) -> dict[str, str]:
    settings = {}
    words = shlex.split(value)
    for index, word in enumerate(words):
        if word == "-c" and index + 1 < len(words):
            word = "-c" + words[index + 1]
        if word.startswith("-c") and "=" in word:
            name, _, setting = word[2:].partition("=")
            settings[name.strip()] = setting.strip()
    return settings


async def migrate(conn: Any) -> None:
    """Create the schema if needed and run pending migrations, one replica at a time.

    A transaction-scoped advisory lock (keyed by schema) makes a second replica starting at the
    same moment wait, then find every migration already recorded.
    """
    async with conn.transaction():
        schema, exists = await _target_schema(conn)
        digest = hashlib.sha256(f"callback-hub:migrate:{schema}".encode()).digest()
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1)", int.from_bytes(digest[:8], "big", signed=True)
        )
        if not exists:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, "
            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in migrations("postgres"):
            if version not in done:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)


async def _target_schema(conn: Any) -> tuple[str, bool]:
    """The schema tables go in (the first on ``search_path``), and whether it exists yet."""
    current = await conn.fetchval("SELECT current_schema()")
    if current:
        return str(current), True
    path = str(await conn.fetchval("SHOW search_path"))
    names = [n.strip().strip('"') for n in path.split(",") if n.strip() != '"$user"']
    if not names or not names[0] or '"' in names[0]:
        raise ConfigError(f"PostgreSQL search_path {path!r} names no schema to create tables in")
    return names[0], False
