from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub import Hub, Settings
from tests.backends import postgres_url, redis_url  # noqa: F401  (fixtures)
from tests.support import serve

API_KEY = "test-api-key"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret": ("test-secret",),
        "api_key": API_KEY,
        "data_dir": tmp_path,
        "database_url": f"sqlite:///{tmp_path / 'hub.db'}",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    async with Hub(settings) as running:
        yield running


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[Hub, httpx.AsyncClient]]:
    """A hub behind a real uvicorn on loopback, and an httpx client pointed at it."""
    hub = Hub(settings)
    async with (
        serve(hub.app) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
        ) as client,
    ):
        yield hub, client
