"""Guard rails: several workers on the memory bus are refused (CLI) or warned about (factory),
and a backend whose extra is missing names the install command."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from hub import Hub, Settings
from hub.asgi import warn_if_worker_on_memory_bus
from hub.errors import MissingExtraError
from tests.support import ROOT


def run_cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HUB_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("extra", [[], ["--broker-url", "memory://"]])
def test_serve_refuses_workers_on_the_memory_bus(extra: list[str], tmp_path: Path) -> None:
    pg = ["--database-url", "postgresql://127.0.0.1/test"]
    result = run_cli("serve", "--workers", "2", "--port", "1", *pg, *extra, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--workers > 1 needs a shared bus" in result.stderr
    assert "HUB_BROKER_URL=redis://" in result.stderr


@pytest.mark.parametrize("bus", ["memory://", "redis://127.0.0.1:6379/0"])
def test_serve_refuses_workers_on_one_sqlite_file(bus: str, tmp_path: Path) -> None:
    result = run_cli(
        "serve", "--workers", "2", "--port", "1", "--broker-url", bus, tmp_path=tmp_path
    )
    assert result.returncode == 2
    assert "a SQLite file takes one hub process" in result.stderr


def test_a_worker_process_on_the_memory_bus_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hub = Hub(Settings(secret=("s",), api_key="k", data_dir=tmp_path))
    with caplog.at_level(logging.ERROR, logger="hub"):
        warn_if_worker_on_memory_bus(hub)
        assert not caplog.records
        monkeypatch.setattr("multiprocessing.parent_process", lambda: object())
        warn_if_worker_on_memory_bus(hub)
    assert "events will NOT cross them" in caplog.text


@pytest.mark.parametrize(
    ("url", "modules", "command"),
    [
        (
            "postgresql://127.0.0.1/x",
            ["asyncpg", "hub.store.postgres", "hub.store.pgconn"],
            "pip install 'callback-hub[postgres]'",
        ),
        (
            "redis://127.0.0.1:6379/0",
            ["redis", "redis.asyncio", "hub.bus.redis"],
            "pip install 'callback-hub[redis]'",
        ),
    ],
)
def test_a_missing_extra_names_the_install_command(
    url: str, modules: list[str], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.bus import bus_from_url
    from hub.store import store_from_url

    for name in modules:
        if name.startswith("hub."):
            monkeypatch.delitem(sys.modules, name, raising=False)  # import it afresh
        else:
            # None in sys.modules makes `import name` raise ImportError, as if not installed.
            monkeypatch.setitem(sys.modules, name, None)
    make = store_from_url if url.startswith("postgresql") else bus_from_url
    with pytest.raises(MissingExtraError) as caught:
        make(url)
    assert command in caught.value.message
