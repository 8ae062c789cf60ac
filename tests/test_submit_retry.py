"""Submit's retry policy by class of failure, and the per-account concurrency limit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from hub import ErrorCategory, Status
from hub.providers.client import ProviderAuthError, ProviderUnavailable
from tests.sim_env import eventually, fast_config, running

POLICY = "violates Midjourney's content policy"


async def test_linkrapi_content_policy_fails_at_once_and_is_not_retried(tmp_path: Path) -> None:
    # Full-width letters and an accent fold to a blocked word under NFKD.
    prompts = ["a \uff47\uff4f\uff52\uff45 scene", "a gor\u00e8 scene"]
    async with running(tmp_path) as env:
        for calls, prompt in enumerate(prompts, 1):
            task = await env.hub.submit("linkrapi", prompt=prompt)
            assert task.status is Status.FAILED
            assert task.error is not None
            assert task.error.category is ErrorCategory.MODERATION
            assert POLICY in task.error.message, "the provider's own message is surfaced"
            assert not task.error.retryable
            assert env.sim.calls["linkrapi.imagine"] == calls, "not retried"
            assert task.external_id is None


async def test_word_boundaries_let_innocent_words_through(tmp_path: Path) -> None:
    async with running(tmp_path) as env:
        task = await env.hub.submit("linkrapi", prompt="a gorgeous gorecki sunset")
        assert (await env.wait(task.id)).status is Status.SUCCEEDED


async def test_other_providers_fail_banned_prompts_with_moderation(tmp_path: Path) -> None:
    async with running(tmp_path) as env:
        providers = ("midjourney-api", "imagineapi", "midapi")
        tasks = [await env.hub.submit(p, prompt="a nsfw poster") for p in providers]
        for task in tasks:
            done = await env.wait(task.id)
            assert done.status is Status.FAILED
            assert done.error is not None and done.error.category is ErrorCategory.MODERATION
        assert len(env.sim.jobs) == 3, "each submitted once, not retried"


async def test_content_policy_over_http_is_a_failed_task(tmp_path: Path) -> None:
    async with running(tmp_path) as env:
        answer = await env.api.post(
            "/v1/tasks", json={"provider": "linkrapi", "submit": {"prompt": "gore"}}
        )
        assert answer.status_code == 201
        body = answer.json()
        assert body["status"] == "failed"
        assert body["error"]["category"] == "moderation"
        assert POLICY in body["error"]["message"]


async def test_429_backs_off_and_honours_retry_after(tmp_path: Path) -> None:
    async with running(tmp_path, fast_config(retry_after_s=0.3)) as env:
        for provider in ("linkrapi", "midjourney-api", "imagineapi", "midapi"):
            env.sim.config.force_429 = 1
            started = time.monotonic()
            task = await env.hub.submit(provider, prompt="a windmill")
            waited = time.monotonic() - started
            assert task.external_id, "the second attempt went through"
            assert waited >= 0.3, "Retry-After was honoured"
            calls = {k: v for k, v in env.sim.calls.items() if k.startswith(provider)}
            assert sum(calls.values()) == 2
            assert (await env.wait(task.id)).status is Status.SUCCEEDED


async def test_5xx_retries_with_backoff_then_succeeds(tmp_path: Path) -> None:
    async with running(tmp_path, fast_config(force_5xx=2)) as env:
        task = await env.hub.submit("linkrapi", prompt="a tram at night")
        assert env.sim.calls["linkrapi.imagine"] == 3
        assert (await env.wait(task.id)).status is Status.SUCCEEDED


async def test_5xx_past_the_attempts_fails_the_task_and_raises(tmp_path: Path) -> None:
    async with running(tmp_path, fast_config(force_5xx=10), submit_attempts=3) as env:
        with pytest.raises(ProviderUnavailable) as caught:
            await env.hub.submit("midapi", prompt="a tram at night")
        assert env.sim.calls["midapi.generate"] == 3
        failed = caught.value.task
        assert failed is not None and failed.status is Status.FAILED
        assert failed.error is not None and failed.error.category is ErrorCategory.UPSTREAM
        assert failed.id in caught.value.message


async def test_network_errors_are_retried(tmp_path: Path) -> None:
    async with running(tmp_path, submit_attempts=2, linkrapi_url="http://127.0.0.1:9") as env:
        with pytest.raises(ProviderUnavailable):
            await env.hub.submit("linkrapi", prompt="unreachable")


@pytest.mark.parametrize(("key", "status"), [("not-a-linkr-key", 401), ("lkr_suspended", 403)])
async def test_401_and_403_are_clear_errors(tmp_path: Path, key: str, status: int) -> None:
    async with running(tmp_path, linkrapi_key=key) as env:
        with pytest.raises(ProviderAuthError) as caught:
            await env.hub.submit("linkrapi", prompt="a dog")
        assert caught.value.http_status == status
        assert env.sim.calls["linkrapi.imagine"] == 1, "not retried"
        answer = await env.api.post(
            "/v1/tasks", json={"provider": "linkrapi", "submit": {"prompt": "a dog"}}
        )
        assert answer.status_code == 502
        assert answer.json()["error"]["code"] == "provider_auth"
        assert "task tsk_" in answer.json()["error"]["message"]


async def test_linkrapi_account_runs_three_jobs_at_once(tmp_path: Path) -> None:
    async with running(tmp_path, fast_config(step_s=0.05)) as env:
        peak = 0

        def open_jobs() -> int:
            return sum(1 for j in env.sim.jobs.values() if not j.phase.done)

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, open_jobs())
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        try:
            tasks = await asyncio.gather(
                *(env.hub.submit("linkrapi", prompt=f"tile {i}") for i in range(5))
            )
            for task in tasks:
                assert (await env.wait(task.id)).status is Status.SUCCEEDED
        finally:
            watcher.cancel()
        assert peak == 3
        await eventually(lambda: env.hub._submitter.limiter.in_use("linkrapi") == 0)
