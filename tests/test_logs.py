"""Tokens and secrets never reach the logs: access lines, error lines, tracebacks, start-up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub import Hub
from hub import logs as hub_logs
from hub.config import Settings
from hub.logs import install_redaction, redact
from hub.models import Update
from hub.providers import ADAPTERS
from hub.providers.base import Adapter
from tests.conftest import API_KEY, make_settings
from tests.support import ROOT, free_port, serve


def test_redact_hides_tokens_keys_and_passwords() -> None:
    lines = {
        '127.0.0.1:5 - "POST /hooks/linkrapi/WyJ0c2si.abc.def HTTP/1.1" 200': "WyJ0c2si",
        "POST /hub/hooks/imagineapi/account/WyJpbWFn.x.y": "WyJpbWFn",
        "GET /v1/tasks/tsk_1/events?token=WyJzdWIi.a.b&stay_open=1": "WyJzdWIi",
        "GET /v1/tasks/tsk_1/events?stay_open=1&token=WyJzdWIi.a.b": "WyJzdWIi",
        "postgresql://hub:s3cr3t-pw@db:5432/hub": "s3cr3t-pw",
        "redis://:r3dis-pw@cache:6379/0": "r3dis-pw",
    }
    for line, secret in lines.items():
        cleaned = redact(line)
        assert secret not in cleaned, cleaned
        assert "***" in cleaned
    assert redact("GET /v1/tasks/tsk_1 HTTP/1.1") == "GET /v1/tasks/tsk_1 HTTP/1.1"


def test_settings_repr_shows_no_secret() -> None:
    settings = Settings(
        secret=("sign-me",),
        api_key="the-api-key",
        linkrapi_key="lkr_provider_key",
        database_url="postgresql://hub:db-pw@db/hub",
    )
    text = repr(settings)
    for secret in ("sign-me", "the-api-key", "lkr_provider_key", "db-pw"):
        assert secret not in text


# -- a real server's own logs -------------------------------------------------------------


@pytest.fixture
def served_cli(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``callback-hub serve`` at log level info with generated secrets; its output file."""
    port = free_port()
    log = tmp_path / "hub.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATA_DIR"] = str(tmp_path / "data")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--port", str(port), "--log-level", "info"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "hub did not start"
                time.sleep(0.05)
            yield url, log
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def test_access_and_startup_logs_carry_no_token_or_secret(
    served_cli: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = served_cli
    data = tmp_path / "data"
    api_key = (data / "api_key").read_text().strip()
    secret = (data / "secret").read_text().strip()
    auth = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=url, headers=auth, timeout=10) as client:
        task = client.post("/v1/tasks", json={"provider": "generic"}).json()
        imagine = client.post("/v1/tasks", json={"provider": "imagineapi"}).json()
        account_url = client.get("/v1/providers/imagineapi/account-hook").json()["url"]
        secrets = {
            "callback token": task["callback_url"].rsplit("/", 1)[1],
            "subscriber token": task["events_url"].split("token=", 1)[1],
            "account key": account_url.rsplit("/", 1)[1],
            "API key": api_key,
            "signing secret": secret,
        }
        bare = httpx.Client(base_url=url, timeout=10)
        with bare:
            assert bare.post(task["callback_url"], json={"status": "running"}).status_code == 200
            assert bare.post(task["callback_url"], json={"status": 3}).status_code == 422
            assert bare.post(task["callback_url"], content=b"{").status_code == 415
            with bare.stream("GET", task["events_url"] + "&stay_open=0") as stream:
                assert stream.status_code == 200
            assert bare.post(account_url, json={"payload": {"id": "x"}}).status_code == 422
            assert bare.post(account_url + "x", json={}).status_code == 401
            events = imagine["events_url"]
            assert bare.get(events.replace("token=", "token=x")).status_code == 401
        # The last request must be in the file before it is read.
        assert client.post(task["callback_url"], json={"status": "succeeded"}).status_code == 200
    deadline = time.monotonic() + 10
    while "succeeded" not in log.read_text() and '/hooks/generic/*** HTTP/1.1" 200' not in (
        log.read_text()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    text = log.read_text()
    assert text.count("/hooks/generic/***") >= 4, text  # the access log is on, and redacted
    assert "token=***" in text
    assert str(data / "secret") in text  # start-up names where the secret is kept...
    for name, value in secrets.items():
        assert value not in text, f"the {name} is in the log"  # ...never the value


# -- error paths, tracebacks included -----------------------------------------------------


class _Broken(Adapter):
    slug = "broken"

    def parse_webhook(self, body: dict[str, Any]) -> Update:
        # Exception messages are where a URL most easily slips into a log.
        raise RuntimeError(f"cannot parse what was posted to {body.get('url')}")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_error_logs_and_tracebacks_carry_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ADAPTERS, "broken", _Broken())
    monkeypatch.setattr(hub_logs, "_installed", False)
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    factory = logging.getLogRecordFactory()
    install_redaction()
    try:
        hub = Hub(make_settings(tmp_path))
        async with serve(hub.app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
            task = await hub.register("broken")
            url = hub.callback_url(task, base_url=base)
            token = url.rsplit("/", 1)[1]
            answer = await c.post(url, json={"url": url})
            assert answer.status_code == 500
            # A child logger (hub.*) with the URL in its arguments and in an exception.
            try:
                raise ValueError(f"failed for {url}")
            except ValueError:
                logging.getLogger("hub.sse.stream").exception("stream to %s failed", url)
            logging.getLogger("hub.app").warning("GET %s", f"/v1/tasks/x/events?token={token}")
    finally:
        root.removeHandler(capture)
        logging.setLogRecordFactory(factory)
    text = "\n".join(capture.lines)
    assert "unhandled error on a webhook for broken" in text
    assert "Traceback" in text and "RuntimeError" in text
    assert token not in text, text
    assert API_KEY not in text
