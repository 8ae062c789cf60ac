"""Abuse limits: body cap, webhook rate per address, slow bodies, replays; all configurable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub import Hub, Settings
from hub.errors import ConfigError
from hub.http import ApiError
from hub.limits import RateLimiter
from hub.models import Event
from tests.conftest import API_KEY, make_settings
from tests.support import serve

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[Hub, str]]:
    hub = Hub(make_settings(tmp_path, **overrides))
    async with serve(hub.app) as url:
        yield hub, url


async def register(url: str, provider: str = "generic") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client:
        answer = await client.post("/v1/tasks", json={"provider": provider})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


# -- every limit is a setting -------------------------------------------------------------


def test_limits_are_read_from_the_environment_and_checked() -> None:
    settings = Settings.from_env(
        {
            "HUB_MAX_BODY_BYTES": "4096",
            "HUB_HOOK_RATE": "2.5",
            "HUB_HOOK_BURST": "7",
            "HUB_HOOK_RATE_EXEMPT": "10.0.0.0/8, ::1",
            "HUB_BODY_TIMEOUT_S": "3",
        }
    )
    assert (settings.max_body_bytes, settings.hook_rate, settings.hook_burst) == (4096, 2.5, 7)
    assert settings.body_timeout_s == 3.0
    assert settings.hook_rate_exempt == "10.0.0.0/8, ::1"
    assert Settings.from_env({"HUB_HOOK_RATE": "0"}).hook_rate == 0  # 0 turns it off
    for name, value in [
        ("HUB_HOOK_RATE", "-1"),
        ("HUB_HOOK_BURST", "0"),
        ("HUB_BODY_TIMEOUT_S", "-2"),
        ("HUB_HOOK_RATE_EXEMPT", "localhost"),
        ("HUB_MAX_BODY_BYTES", "10"),
    ]:
        with pytest.raises(ConfigError):
            Settings.from_env({name: value})


# -- body cap -----------------------------------------------------------------------------


async def test_bodies_over_the_cap_get_413_declared_or_chunked(tmp_path: Path) -> None:
    async with running(tmp_path, max_body_bytes=2048) as (hub, url):
        task = await register(url)
        big = b'{"status": "running", "pad": "' + b"x" * 4096 + b'"}'

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for i in range(0, len(big), 512):
                yield big[i : i + 512]

        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client:
            for target in (task["callback_url"], "/v1/tasks", f"/v1/tasks/{task['id']}/bind"):
                for content in (big, chunked()):
                    answer = await client.post(
                        target, content=content, headers={"content-type": "application/json"}
                    )
                    assert answer.status_code == 413, (target, answer.text)
                    assert answer.json()["error"]["code"] == "body_too_large"
        assert [e.disposition.value for e in await hub.events(task["id"])] == ["applied"]


# -- rate limit ---------------------------------------------------------------------------


def test_token_bucket_refills_at_the_rate_and_says_when() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.retry_after("203.0.113.9") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.retry_after("203.0.113.9") == pytest.approx(0.5)
    assert limiter.retry_after("198.51.100.1") == 0.0  # buckets are per address
    now[0] += 0.5
    assert limiter.retry_after("203.0.113.9") == 0.0
    assert limiter.retry_after("203.0.113.9") == pytest.approx(0.5)
    now[0] += 60  # a full bucket, never more than the burst
    assert [limiter.retry_after("203.0.113.9") for _ in range(4)][-1] > 0
    with pytest.raises(ApiError) as caught:
        limiter.check("203.0.113.9")
    assert caught.value.status_code == 429
    assert caught.value.headers == {"Retry-After": "1"}


def test_exempt_addresses_and_networks_and_a_bounded_table() -> None:
    limiter = RateLimiter(1.0, 1, ["10.0.0.0/8", "::1", "127.0.0.1"], max_clients=100)
    for address in ("10.1.2.3", "::1", "127.0.0.1"):
        assert all(limiter.retry_after(address) == 0 for _ in range(50))
    assert limiter.retry_after("11.0.0.1") == 0
    assert limiter.retry_after("11.0.0.1") > 0
    for n in range(1000):  # an attacker with many addresses cannot grow the table
        limiter.retry_after(f"2001:db8::{n:x}")
    assert len(limiter._clients) <= 100


async def test_webhooks_over_the_rate_get_429_with_retry_after(tmp_path: Path) -> None:
    # 127.0.0.1 is exempt by default; 127.0.0.2 is another loopback address, not exempt.
    async with running(tmp_path, hook_rate=2.0, hook_burst=3) as (hub, url):
        task = await register(url)
        hook = task["callback_url"]
        other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with (
            httpx.AsyncClient(timeout=10) as local,
            httpx.AsyncClient(timeout=10, transport=other) as remote,
        ):
            local_codes = [(await local.post(hook, json={"status": "running"})).status_code]
            local_codes += [(await local.post(hook + "x", json={})).status_code for _ in range(9)]
            assert 429 not in local_codes
            codes = [(await remote.post(hook + "x", json={})).status_code for _ in range(3)]
            assert codes == [401, 401, 401]  # forged tokens spend the bucket too
            limited = await remote.post(hook, json={"status": "succeeded"})
            assert limited.status_code == 429
            assert limited.json()["error"]["code"] == "rate_limited"
            wait = int(limited.headers["retry-after"])
            assert wait >= 1
            await asyncio.sleep(wait)
            again = await remote.post(hook, json={"status": "succeeded"})
            assert again.status_code == 200, again.text
            # The account-level URL is limited the same way.
            key = hub.signer.account_key("imagineapi")
            for _ in range(5):
                last = await remote.post(f"{url}/hooks/imagineapi/account/{key}", json={})
            assert last.status_code == 429
        # A refused webhook changed nothing: running (local), then succeeded once.
        dispositions = [e.disposition.value for e in await hub.events(task["id"])]
        assert dispositions == ["applied", "applied", "applied"]


async def test_rate_limit_can_be_turned_off(tmp_path: Path) -> None:
    async with running(tmp_path, hook_rate=0, hook_rate_exempt="") as (_, url):
        task = await register(url)
        async with httpx.AsyncClient(timeout=10) as client:
            codes = {
                (await client.post(task["callback_url"] + "x", json={})).status_code
                for _ in range(30)
            }
        assert codes == {401}


# -- slow bodies --------------------------------------------------------------------------


async def _trickle(url: str, path: str, *, body: bytes, send: bytes) -> tuple[bytes, float]:
    """Send headers for ``body`` but only ``send`` of it, a byte every 0.2 s; the answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()

    async def drip() -> None:
        for byte in send:
            await asyncio.sleep(0.2)
            writer.write(bytes([byte]))
            await writer.drain()

    loop = asyncio.get_running_loop()
    started = loop.time()
    dripping = asyncio.create_task(drip())
    answer = b""
    try:
        async with asyncio.timeout(15):
            answer = await reader.read(65536)
            # Stop writing at once: a byte sent after the server closed draws a reset, which
            # could race the rest of the answer.
            dripping.cancel()
            while chunk := await reader.read(65536):  # to EOF: the server must close it
                answer += chunk
    except ConnectionResetError:
        # The server answered and closed while a dripped byte was in flight; what matters is
        # that the answer arrived and the connection ended.
        if not answer:
            raise
    finally:
        dripping.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await dripping
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return answer, loop.time() - started


async def test_slow_bodies_get_408_and_the_connection_is_closed(tmp_path: Path) -> None:
    async with running(tmp_path, body_timeout_s=1.0) as (hub, url):
        task = await register(url)
        hook = "/hooks/generic/" + task["callback_url"].rsplit("/", 1)[1]
        body = b'{"status": "succeeded", "pad": "' + b"x" * 200 + b'"}'
        cases = [
            (hook, body[:30]),  # trickling the body
            (hook, b""),  # headers only, then nothing
            ("/v1/tasks", body[:30]),  # the routes behind the router too
        ]
        for path, sent in cases:
            answer, took = await _trickle(url, path, body=body, send=sent)
            head, _, payload = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"connection: close" in head.lower()
            assert b'"body_timeout"' in payload
            assert took < 10  # ended by the deadline, not by the whole body arriving
        assert (await hub.get(task["id"])).status.value == "queued"
        # A body that arrives in time is untouched by the deadline.
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            ok = await client.post(hook, content=body, headers={"content-type": "application/json"})
        assert ok.status_code == 200, ok.text


# -- replays ------------------------------------------------------------------------------


async def test_replayed_webhooks_are_idempotent_and_fanned_out_once(tmp_path: Path) -> None:
    delivered: list[Event] = []
    async with running(tmp_path) as (hub, url):
        hub.dispatcher.add_listener(delivered.append)
        task = await register(url, "linkrapi")
        hook = task["callback_url"]
        running_body = {"task_id": "lk-9", "status": "processing", "progress": 40}
        done_body = {"task_id": "lk-9", "status": "completed", "image_url": "https://cdn/g.png"}
        async with httpx.AsyncClient(timeout=10) as client:
            first = await client.post(hook, json=running_body)
            replays = await asyncio.gather(
                *(client.post(hook, json=running_body) for _ in range(20))
            )
            done = await asyncio.gather(*(client.post(hook, json=done_body) for _ in range(20)))
            late = await client.post(hook, json={**running_body, "progress": 80})
        assert first.json()["disposition"] == "applied"
        assert {r.json()["disposition"] for r in replays} == {"duplicate"}
        assert sorted(r.json()["disposition"] for r in done) == ["applied"] + ["duplicate"] * 19
        assert late.json()["disposition"] == "stale"  # terminal states are final
        # Every delivery is stored; only the applied ones are fanned out, once each.
        await asyncio.sleep(0.2)
        mine = [e for e in delivered if e.task_id == task["id"]]
        assert [e.type.value if e.type else None for e in mine] == [
            "task.created",
            "task.progress",
            "task.succeeded",
        ]
        assert len({e.seq for e in mine}) == 3
        assert len(await hub.events(task["id"])) == 1 + 1 + 20 + 20 + 1
    # Dedup is in the store, not a time-limited cache: a replay after a restart is still one.
    async with running(tmp_path) as (hub, _), httpx.AsyncClient(timeout=10) as client:
        again = await client.post(hook.replace(url, _), json=done_body)
        assert again.json()["disposition"] == "duplicate"
        assert (await hub.get(task["id"])).status.value == "succeeded"


async def test_a_provider_delivery_id_is_the_idempotency_key(tmp_path: Path) -> None:
    async with running(tmp_path) as (hub, url):
        task = await register(url)
        async with httpx.AsyncClient(timeout=10) as client:
            a = await client.post(
                task["callback_url"], json={"status": "running", "progress": 5, "delivery_id": "d1"}
            )
            # A retry of the same delivery, even re-rendered with other content, is a duplicate.
            b = await client.post(
                task["callback_url"], json={"status": "running", "progress": 9, "delivery_id": "d1"}
            )
        assert (a.json()["disposition"], b.json()["disposition"]) == ("applied", "duplicate")
        assert (await hub.get(task["id"])).progress == 5


# -- streams per token --------------------------------------------------------------------


async def test_streams_per_subscriber_token_are_capped(tmp_path: Path) -> None:
    async with running(tmp_path, sse_max_per_token=2) as (_, url):
        task = await register(url)
        stream_url = task["events_url"] + "&stay_open=1"
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            for _ in range(2):
                opened = await stack.enter_async_context(client.stream("GET", stream_url))
                assert opened.status_code == 200
            refused = await client.get(stream_url)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_streams_for_token"
            assert int(refused.headers["retry-after"]) >= 1
            # The operator's API key is not a subscriber token: only the global cap applies.
            async with client.stream(
                "GET", f"{url}/v1/tasks/{task['id']}/events?stay_open=1", headers=AUTH
            ) as operator:
                assert operator.status_code == 200
        # Closed streams give their slots back (once the server has seen them go).
        async with httpx.AsyncClient(timeout=10) as client, asyncio.timeout(10):
            while True:
                async with (
                    client.stream("GET", stream_url) as a,
                    client.stream("GET", stream_url) as b,
                ):
                    if a.status_code == b.status_code == 200:
                        break
                await asyncio.sleep(0.05)
