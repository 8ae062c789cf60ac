"""Tokens: bound to purpose, task and provider; rotation; expiry; constant time; no forgeries.

Each point is tested on :class:`hub.signing.Signer` and, where it matters, over HTTP against a
live hub, where a refused token must also change nothing.
"""

from __future__ import annotations

import hmac
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from hub import Hub
from hub.config import Settings
from hub.errors import TokenError, TokenExpired, TokenScopeError
from hub.signing import Signer
from tests.conftest import API_KEY, make_settings
from tests.support import serve

TASK, OTHER = "tsk_01AAAAAAAAAAAAAAAAAAAAAAAA", "tsk_01BBBBBBBBBBBBBBBBBBBBBBBB"


def signer(*secrets: str, max_age: int = 3600) -> Signer:
    return Signer(secrets or ("k1",), callback_max_age=max_age, subscriber_max_age=max_age)


# -- purpose, task and provider -----------------------------------------------------------


def test_each_token_works_for_its_own_purpose_task_and_provider_only() -> None:
    s = signer()
    callback = s.callback_token(TASK, "linkrapi")
    subscriber = s.subscriber_token(TASK)
    account = s.account_key("imagineapi")

    assert s.verify_callback(callback, "linkrapi") == TASK
    s.verify_subscriber(subscriber, TASK)
    s.verify_account_key(account, "imagineapi")

    # Another provider or task: genuine but out of scope (403).
    with pytest.raises(TokenScopeError):
        s.verify_callback(callback, "midapi")
    with pytest.raises(TokenScopeError):
        s.verify_subscriber(subscriber, OTHER)
    with pytest.raises(TokenScopeError):
        s.verify_account_key(account, "linkrapi")

    # Another purpose: the salt differs, so the signature itself does not verify (401).
    for token in (subscriber, account):
        with pytest.raises(TokenError) as caught:
            s.verify_callback(token, "linkrapi")
        assert not isinstance(caught.value, TokenScopeError)
    for token in (callback, account):
        with pytest.raises(TokenError) as caught:
            s.verify_subscriber(token, TASK)
        assert not isinstance(caught.value, TokenScopeError)
    for token in (callback, subscriber):
        with pytest.raises(TokenError) as caught:
            s.verify_account_key(token, "imagineapi")
        assert not isinstance(caught.value, TokenScopeError)


async def test_a_token_used_as_another_is_refused_over_http_and_changes_nothing(
    served: tuple[Hub, httpx.AsyncClient],
) -> None:
    hub, client = served
    created = await client.post("/v1/tasks", json={"provider": "imagineapi"})
    task = created.json()
    callback_token = task["callback_url"].rsplit("/", 1)[1]
    subscriber_token = task["events_url"].split("token=", 1)[1]
    account_key = hub.signer.account_key("imagineapi")
    other_task = (await client.post("/v1/tasks", json={"provider": "imagineapi"})).json()
    other_subscriber = other_task["events_url"].split("token=", 1)[1]
    body = {"event": "images.items.update", "payload": {"id": "im-1", "status": "completed"}}
    anon = httpx.AsyncClient(base_url=str(client.base_url), timeout=10)
    async with anon:
        attempts = [
            # a subscriber token or an account key posted as a callback URL
            ("POST", f"/hooks/imagineapi/{subscriber_token}", 401),
            ("POST", f"/hooks/imagineapi/{account_key}", 401),
            # a callback token or a subscriber token posted as an account key
            ("POST", f"/hooks/imagineapi/account/{callback_token}", 401),
            ("POST", f"/hooks/imagineapi/account/{subscriber_token}", 401),
            # a genuine callback token at another provider's URL
            ("POST", f"/hooks/linkrapi/{callback_token}", 403),
            # a callback token or an account key opening the task's stream
            ("GET", f"/v1/tasks/{task['id']}/events?token={callback_token}", 401),
            ("GET", f"/v1/tasks/{task['id']}/events?token={account_key}", 401),
            # another task's subscriber token
            ("GET", f"/v1/tasks/{task['id']}/events?token={other_subscriber}", 403),
            # tokens as the API key
            ("GET", f"/v1/tasks/{task['id']}", 401),
        ]
        for method, path, expected in attempts:
            headers = {"Authorization": f"Bearer {subscriber_token}"} if method == "GET" else {}
            answer = await anon.request(method, path, json=body, headers=headers)
            assert answer.status_code == expected, (path, answer.text)
            assert answer.json()["error"]["code"] in {
                "invalid_token",
                "token_scope",
                "unauthorized",
            }
    events = await hub.events(task["id"])
    assert [e.type.value if e.type else None for e in events] == ["task.created"]


# -- rotation -----------------------------------------------------------------------------


def test_rotation_old_key_verifies_until_it_is_removed() -> None:
    old = signer("old")
    token = old.callback_token(TASK, "linkrapi")
    subscriber = old.subscriber_token(TASK)
    account = old.account_key("imagineapi")

    rotated = signer("new", "old")  # the first key signs, all verify
    assert rotated.verify_callback(token, "linkrapi") == TASK
    rotated.verify_subscriber(subscriber, TASK)
    rotated.verify_account_key(account, "imagineapi")
    fresh = rotated.callback_token(OTHER, "linkrapi")
    assert signer("new").verify_callback(fresh, "linkrapi") == OTHER
    with pytest.raises(TokenError):
        old.verify_callback(fresh, "linkrapi")

    removed = signer("new")  # a restart with the old key gone
    for check in (
        lambda: removed.verify_callback(token, "linkrapi"),
        lambda: removed.verify_subscriber(subscriber, TASK),
        lambda: removed.verify_account_key(account, "imagineapi"),
    ):
        with pytest.raises(TokenError):
            check()


def test_hub_secret_lists_keys_comma_separated() -> None:
    settings = Settings.from_env({"HUB_SECRET": "new, old ,"})
    assert settings.secret == ("new", "old")


async def test_rotation_across_restarts_over_http(tmp_path: Path) -> None:
    body = {"status": "running", "progress": 10}

    async def post(secrets: tuple[str, ...], url: str | None = None) -> tuple[str, int]:
        hub = Hub(make_settings(tmp_path, secret=secrets))
        async with serve(hub.app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
            if url is None:
                created = await c.post(
                    "/v1/tasks",
                    json={"provider": "generic"},
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                url = created.json()["callback_url"].split(base, 1)[1]
            answer = await c.post(url, json=body)
            return url, answer.status_code

    url, status = await post(("old",))
    assert status == 200
    assert (await post(("new", "old"), url))[1] == 200
    assert (await post(("new",), url))[1] == 401


# -- expiry -------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """``time.time`` under the test's control (itsdangerous and the cache both read it)."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    yield now


def test_expiry_applies_even_to_cached_tokens(clock: list[float]) -> None:
    s = signer(max_age=60)
    callback = s.callback_token(TASK, "linkrapi")
    subscriber = s.subscriber_token(TASK)
    account = s.account_key("imagineapi")
    clock[0] += 30
    assert s.verify_callback(callback, "linkrapi") == TASK  # verified, and now cached
    s.verify_subscriber(subscriber, TASK)
    clock[0] += 31
    with pytest.raises(TokenExpired):
        s.verify_callback(callback, "linkrapi")
    with pytest.raises(TokenExpired):
        s.verify_subscriber(subscriber, TASK)
    with pytest.raises(TokenExpired):  # never cached, same answer
        signer(max_age=60).verify_callback(callback, "linkrapi")
    # Account keys are configuration, set once at the provider: they do not expire.
    clock[0] += 10 * 365 * 86_400
    s.verify_account_key(account, "imagineapi")


def test_a_token_from_the_future_is_refused(clock: list[float]) -> None:
    ahead = signer()
    clock[0] += 3600
    token = ahead.callback_token(TASK, "linkrapi")
    clock[0] -= 3600
    with pytest.raises(TokenError):
        signer().verify_callback(token, "linkrapi")


# -- constant time ------------------------------------------------------------------------


def test_comparisons_are_constant_time(
    monkeypatch: pytest.MonkeyPatch, served: tuple[Hub, httpx.AsyncClient]
) -> None:
    calls: list[tuple[Any, Any]] = []
    original: Callable[[Any, Any], bool] = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    s = signer()
    token = s.callback_token(TASK, "linkrapi")
    signer().verify_callback(token, "linkrapi")
    assert calls, "the signature is not compared with hmac.compare_digest"
    calls.clear()
    hub, _ = served
    from starlette.requests import Request

    from hub.http import ApiError, require_api_key

    for given in (API_KEY, "x", API_KEY[:-1] + "y", ""):
        request = Request(
            {"type": "http", "headers": [(b"authorization", f"Bearer {given}".encode())]}
        )
        try:
            require_api_key(request, hub.settings.api_key)
        except ApiError:
            assert given != API_KEY
    assert len(calls) == 4, "the API key is not compared with hmac.compare_digest"


# -- thousands of wrong tokens ------------------------------------------------------------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def mutations(token: str, rng: random.Random) -> Iterator[str]:
    """Bit flips at every position, truncations, extensions, splices and random strings."""
    for i, char in enumerate(token):
        for bit in range(8):
            flipped = chr(ord(char) ^ (1 << bit))
            yield token[:i] + flipped + token[i + 1 :]
    for n in range(len(token)):
        yield token[:n]
        yield token[n + 1 :]
    for extra in ("=", "==", "é", "\x00", " ", "A", ".", "\ud800", "%3D"):
        yield token + extra
        yield extra + token
    for _ in range(300):
        yield "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 2 * len(token))))
    for _ in range(100):
        yield "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(1, len(token))))


def test_thousands_of_random_truncated_and_bit_flipped_tokens_are_refused() -> None:
    rng = random.Random(20240607)
    genuine = signer("k1")
    forger = signer("not-the-key")
    minted = {
        "callback": genuine.callback_token(TASK, "linkrapi"),
        "subscriber": genuine.subscriber_token(TASK),
        "account": genuine.account_key("imagineapi"),
    }
    # Well-formed tokens signed with another key, and one token's payload with another's
    # signature.
    forged = [
        forger.callback_token(TASK, "linkrapi"),
        forger.subscriber_token(TASK),
        forger.account_key("imagineapi"),
        minted["callback"].rsplit(".", 1)[0] + "." + minted["subscriber"].rsplit(".", 1)[1],
        genuine.callback_token(OTHER, "linkrapi").rsplit(".", 2)[0]
        + "."
        + minted["callback"].split(".", 1)[1],
    ]
    checks: dict[str, Callable[[str], object]] = {
        "callback": lambda t: genuine.verify_callback(t, "linkrapi"),
        "subscriber": lambda t: genuine.verify_subscriber(t, TASK),
        "account": lambda t: genuine.verify_account_key(t, "imagineapi"),
    }
    tried = accepted = 0
    for kind, token in minted.items():
        checks[kind](token)  # the genuine one verifies (and is now cached)
        candidates = {*mutations(token, rng), *forged} - {token}
        for candidate in candidates:
            for check in checks.values():
                tried += 1
                try:
                    check(candidate)
                except TokenError:
                    continue
                accepted += 1
                print(f"accepted: {kind} {candidate!r}")
    print(f"\ntokens tried: {tried}, accepted: {accepted}")
    assert tried > 10_000
    assert accepted == 0


async def test_mutated_callback_urls_are_refused_over_http(
    served: tuple[Hub, httpx.AsyncClient],
) -> None:
    hub, client = served
    task = (await client.post("/v1/tasks", json={"provider": "generic"})).json()
    token = task["callback_url"].rsplit("/", 1)[1]
    rng = random.Random(7)
    candidates = sorted({*mutations(token, rng)} - {token})
    # Always the lone surrogates too: the sample only sometimes draws them.
    sample = [*rng.sample(candidates, 300), token + "\ud800", "\ud800" + token]
    statuses: dict[int, int] = {}
    for candidate in sample:
        # surrogatepass: a lone surrogate goes out as the invalid UTF-8 it would be on the wire.
        path = quote(candidate, safe="", errors="surrogatepass")
        answer = await client.post(f"/hooks/generic/{path}", json={"status": "succeeded"})
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
    # 404: a mutation that leaves nothing to route (an empty token segment, say).
    assert set(statuses) <= {401, 404}, statuses
    assert (await hub.get(task["id"])).status.value == "queued"
