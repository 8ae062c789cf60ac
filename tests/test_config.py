"""Settings from the environment, kept secrets, and the command line."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hub import ConfigError, Hub, Settings, Status, TokenError, Update
from hub.signing import Signer
from tests.support import ROOT


def test_environment_is_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "HUB_SECRET": "new, old",
            "HUB_API_KEY": "k",
            "HUB_PORT": "9001",
            "HUB_DATA_DIR": str(tmp_path),
            "HUB_MAX_BODY_BYTES": "2048",
        }
    )
    assert settings.secret == ("new", "old")
    assert settings.port == 9001
    assert settings.max_body_bytes == 2048
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.mark.parametrize(
    "env",
    [
        {"HUB_PORT": "eighty"},
        {"HUB_SQLITE_SYNCHRONOUS": "SOMETIMES"},
        {"HUB_MAX_BODY_BYTES": "10"},
    ],
)
def test_bad_settings_are_config_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


async def test_generated_secret_is_kept_so_callback_urls_survive_restarts(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({"HUB_DATA_DIR": str(tmp_path)})
    async with Hub(settings) as first:
        task = await first.register("generic")
        url = first.callback_url(task)
        api_key = first.settings.api_key
    secret_file = tmp_path / "secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    async with Hub(settings) as second:
        token = url.rsplit("/", 1)[1]
        assert second.signer.verify_callback(token, "generic") == task.id
        assert second.settings.api_key == api_key
        await second.receive("generic", Update(status=Status.SUCCEEDED), task_id=task.id)


def test_rotation_first_signs_all_verify_until_removed() -> None:
    old = Signer(("old",), callback_max_age=60, subscriber_max_age=60)
    token = old.callback_token("tsk_1", "linkrapi")
    rotated = Signer(("new", "old"), callback_max_age=60, subscriber_max_age=60)
    assert rotated.verify_callback(token, "linkrapi") == "tsk_1"
    fresh = rotated.callback_token("tsk_2", "linkrapi")
    assert (
        Signer(("new",), callback_max_age=60, subscriber_max_age=60).verify_callback(
            fresh, "linkrapi"
        )
        == "tsk_2"
    )
    with pytest.raises(TokenError):
        Signer(("new",), callback_max_age=60, subscriber_max_age=60).verify_callback(
            token, "linkrapi"
        )


def test_cli_help_and_module_entry_point() -> None:
    for command in (["callback-hub", "--help"], [sys.executable, "-m", "hub", "--help"]):
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=30)
        assert out.returncode == 0, out.stderr
        assert "serve" in out.stdout


def test_cli_reports_config_errors_without_a_traceback(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hub", "serve", "--database-url", "mysql://x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "HUB_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 2
    assert "unsupported HUB_DATABASE_URL scheme" in out.stderr
    assert "Traceback" not in out.stderr


async def test_a_failed_start_leaves_nothing_running(tmp_path: Path) -> None:
    import threading

    from hub.bus.base import EventSink
    from hub.bus.memory import MemoryBus

    class BrokenBus(MemoryBus):
        async def start(self, sink: EventSink) -> None:
            raise RuntimeError("the bus cannot start")

    before = threading.active_count()
    hub = Hub(
        Settings(
            secret=("s",),
            api_key="k",
            data_dir=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'hub.db'}",
        ),
        bus=BrokenBus(),
    )
    with pytest.raises(RuntimeError, match="cannot start"):
        await hub.start()
    assert not hub.running
    assert threading.active_count() == before  # the store's threads were closed again
