"""Real PostgreSQL and Redis for tests, isolated per test, skipped only outside CI.

``postgres_url`` yields a URL whose ``search_path`` is a fresh schema (dropped afterwards);
``redis_url`` yields a URL with a fresh pub/sub ``channel``. So tests never see each other's
rows or messages, even when several people run the suite against the same servers.

Where a server is not reachable the test is skipped with the reason; under ``CI=true`` it
fails instead, so CI can never go green by skipping them. Override the servers with
``HUB_TEST_POSTGRES_URL`` and ``HUB_TEST_REDIS_URL``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

import pytest

POSTGRES_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

#: How long to keep trying a server before calling it absent (someone may be restarting it).
REACH_TIMEOUT_S = 8.0
#: Schemas left by runs that were killed are dropped once they are this old.
STALE_SCHEMA_S = 3600

T = TypeVar("T")


def in_ci() -> bool:
    """Whether the suite runs under CI, where a missing backend is a failure."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(message: str) -> NoReturn:
    """Skip the test with ``message``, or fail it under CI."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: PostgreSQL and Redis must be running)", pytrace=False)
    pytest.skip(message)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private loop in a thread (safe from any fixture)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(60)
    if "error" in box:
        raise box["error"]
    if thread.is_alive():
        raise TimeoutError("backend helper did not finish in 60 s")
    return box["value"]  # type: ignore[no-any-return]


def unique_name(prefix: str) -> str:
    """``prefix`` + the time + random hex: unique, and old leftovers can be recognised."""
    return f"{prefix}{int(time.time())}_{secrets.token_hex(4)}"


# -- PostgreSQL ------------------------------------------------------------------------------


async def _pg_connect() -> Any:
    import asyncpg

    deadline = time.monotonic() + REACH_TIMEOUT_S
    while True:
        try:
            return await asyncpg.connect(POSTGRES_URL, timeout=3)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(0.3)


async def _create_schema(name: str) -> None:
    conn = await _pg_connect()
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        cutoff = int(time.time()) - STALE_SCHEMA_S
        for row in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hub\\_t\\_%'"
        ):
            stamp = row["nspname"].split("_")[2]
            if stamp.isdigit() and int(stamp) < cutoff:
                await _drop(conn, row["nspname"])
    finally:
        await conn.close()


async def _drop(conn: Any, name: str) -> None:
    # A bounded wait: a connection someone forgot to close must not hang the suite.
    await conn.execute("SET lock_timeout = '10s'")
    await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


async def _drop_schema(name: str) -> None:
    conn = await _pg_connect()
    try:
        await _drop(conn, name)
    finally:
        await conn.close()


def postgres_schema_url(schema: str) -> str:
    """The test server's URL with ``schema`` first on the search path."""
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}search_path={schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL on a fresh, private schema (skips, or fails under CI, if absent)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        unavailable("asyncpg is not installed: pip install 'callback-hub[postgres]'")
    schema = unique_name("hub_t_")
    try:
        run_sync(_create_schema(schema))
    except ConnectionError as exc:
        unavailable(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    try:
        yield postgres_schema_url(schema)
    finally:
        run_sync(_drop_schema(schema))


# -- Redis -----------------------------------------------------------------------------------


async def _redis_ping() -> None:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    deadline = time.monotonic() + REACH_TIMEOUT_S
    while True:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        try:
            await client.ping()
            return
        except (OSError, RedisError) as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(0.3)
        finally:
            await client.aclose()


@pytest.fixture
def redis_url() -> str:
    """A Redis URL with a private pub/sub channel (skips, or fails under CI, if absent)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        unavailable("redis is not installed: pip install 'callback-hub[redis]'")
    try:
        run_sync(_redis_ping())
    except ConnectionError as exc:
        unavailable(f"Redis not reachable on 127.0.0.1:6379: {exc}")
    separator = "&" if "?" in REDIS_URL else "?"
    return f"{REDIS_URL}{separator}channel={unique_name('hub_t_')}"


# -- restarting the shared services ----------------------------------------------------------

REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def stop_redis() -> None:
    """Shut the shared Redis down (nothing is kept on disk)."""
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"],
        capture_output=True,
        timeout=10,
        check=False,
    )


def start_redis() -> None:
    """Start the shared Redis again and wait until it answers."""
    subprocess.run(REDIS_START, capture_output=True, timeout=10, check=False)
    run_sync(_redis_ping())


def postgres_ctl(action: str) -> None:
    """``pg_ctlcluster <version> main <action>`` for the shared PostgreSQL."""
    versions = sorted(os.listdir("/etc/postgresql"))
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", action],
        capture_output=True,
        timeout=60,
        check=True,
    )


def can_restart_services() -> bool:
    """Whether this machine runs the services itself (and so the tests may restart them)."""
    return os.path.isdir("/etc/postgresql") and _which("redis-server") and _which("pg_ctlcluster")


def _which(program: str) -> bool:
    from shutil import which

    return which(program) is not None


# -- waiting and reading metrics -------------------------------------------------------------


async def until(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with ``labels`` in Prometheus text, 0 when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
