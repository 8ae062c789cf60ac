"""Property-based tests of every provider adapter: no input crashes one.

An adapter sees whatever a provider (or an attacker holding a callback URL) posts. For any
JSON object — shaped like the provider's format with odd values in every field, or arbitrary —
it must either refuse it with a 4xx :class:`~hub.errors.HubError` or return a well-formed
:class:`~hub.models.Update` (``status=None`` when it does not recognise the report, which the
hub stores as ``unrecognised``). The last test sends such bodies over HTTP to a live hub and
checks the answer is a 4xx or a stored event.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.errors import HubError
from hub.http import parse_json_object
from hub.models import Disposition, Output, Status, Update
from hub.providers import ADAPTERS, get_adapter
from tests.support import HubProcess

EXAMPLES = 150
Strategy = st.SearchStrategy[Any]

# -- JSON values, odd ones included -------------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 1, 2, 100, 101, 2**63, -(2**63) - 1, 10**100, -(10**300)]),
    st.floats(),  # NaN, infinities and -0.0 included: a poller's json.loads accepts them
    st.sampled_from([1e308, -1e308, 5e-324, 99.999, 100.5]),
)
_STRINGS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "null", "NaN", "inf", "-1e999", "45%", "1e999", "١٢"]),
    st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.sampled_from([201, 2001, 4097])),
)
LEAVES = st.one_of(st.none(), st.booleans(), _NUMBERS, _STRINGS)
JSON: Strategy = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _either(*good: Any) -> Strategy:
    """A field that is sometimes a value the provider really sends, sometimes anything."""
    return st.one_of(st.sampled_from(good), JSON)


def _shaped(fields: dict[str, Strategy]) -> Strategy:
    return st.fixed_dictionaries({}, optional=fields).flatmap(
        lambda known: st.dictionaries(st.text(max_size=8), JSON, max_size=2).map(
            lambda extra: {**extra, **known}
        )
    )


_URLS = st.lists(_either("https://cdn/x.png", {"resultUrl": "https://cdn/y.png"}), max_size=5)

LINKRAPI = _shaped(
    {
        "status": _either("pending", "processing", "completed", "failed", "timeout", "COMPLETED"),
        "task_id": _either("lk-1", "lk-2"),
        "progress": _either(0, 45, "45%", 100),
        "action": _either("imagine", "upsample1", "upsample9", "variation2", "reroll"),
        "image_url": _either("https://cdn/grid.png"),
        "grid_url": _either("https://cdn/grid.png"),
        "images": st.one_of(_URLS, JSON),
        "components": st.one_of(
            st.lists(
                _shaped({"label": _either("U1", "V4", "🔄"), "custom_id": _either("MJ::x")}),
                max_size=4,
            ),
            JSON,
        ),
        "error": _either("content policy", "quota exceeded", None),
        "message": JSON,
    }
)
_MJ_JOB = _shaped(
    {
        "taskId": _either("mj-1"),
        "status": _either(0, 1, 2, 3, "1", "x"),
        "image": _either("https://cdn/grid.png"),
        "images": st.one_of(_URLS, JSON),
        "progress": _either(10, "50"),
        "message": JSON,
        "error": JSON,
    }
)
MIDJOURNEY_API = _shaped(
    {"status": _either(0, 1), "message": JSON, "data": st.one_of(_MJ_JOB, JSON)}
)
_IMAGINE_ITEM = _shaped(
    {
        "id": _either("im-1"),
        "status": _either("pending", "in-progress", "completed", "failed"),
        "url": _either("https://cdn/grid.png"),
        "upscaled_urls": st.one_of(_URLS, JSON),
        "progress": _either(None, 30),
        "error": JSON,
        "ref": _either("tsk_x"),
    }
)
IMAGINEAPI = _shaped(
    {
        "event": _either("images.items.create", "images.items.update"),
        "payload": st.one_of(_IMAGINE_ITEM, JSON),
        "data": st.one_of(_IMAGINE_ITEM, JSON),
    }
)
MIDAPI = _shaped(
    {
        "code": _either(200, 400, 500, 501),
        "msg": JSON,
        "data": st.one_of(
            _shaped({"taskId": _either("md-1"), "resultUrls": st.one_of(_URLS, JSON)}), JSON
        ),
    }
)
_OUTPUT = _shaped(
    {"url": _either("https://cdn/x.png"), "role": _either("image", "grid"), "index": _either(0)}
)
GENERIC = _shaped(
    {
        "status": st.one_of(st.sampled_from([s.value for s in Status]), JSON),
        "progress": JSON,
        "provider_task_id": JSON,
        "outputs": st.one_of(st.lists(_OUTPUT, max_size=3), JSON),
        "error": st.one_of(
            _shaped({"category": _either("moderation", "bogus"), "message": JSON, "code": JSON}),
            JSON,
        ),
        "client_ref": JSON,
        "delivery_id": JSON,
    }
)
SHAPED: dict[str, Strategy] = {
    "linkrapi": LINKRAPI,
    "midjourney-api": MIDJOURNEY_API,
    "imagineapi": IMAGINEAPI,
    "midapi": MIDAPI,
    "generic": GENERIC,
}


def test_every_adapter_is_fuzzed() -> None:
    assert set(SHAPED) >= set(ADAPTERS), "add a shaped strategy for the new adapter"


# -- the property -------------------------------------------------------------------------


def outcome(provider: str, body: dict[str, Any]) -> Update | HubError:
    """The adapter's update, or the HubError it refused the body with; anything else fails."""
    try:
        update = get_adapter(provider).parse_webhook(body)
    except HubError as exc:
        assert 400 <= exc.status_code < 500, exc
        assert exc.message
        return exc
    check_update(update)
    return update


def _bounded(value: str | None, limit: int) -> None:
    assert value is None or (isinstance(value, str) and len(value) <= limit), repr(value)[:200]


def check_update(update: Update) -> None:
    assert isinstance(update, Update)
    assert update.status is None or isinstance(update.status, Status)
    assert update.progress is None or (
        type(update.progress) is int and 0 <= update.progress <= 100
    ), update.progress
    for name in ("provider_task_id", "client_ref", "delivery_id"):
        _bounded(getattr(update, name), 200)
    assert update.provider_status is None or isinstance(update.provider_status, str)
    assert len(update.outputs) <= 130
    for output in update.outputs:
        assert isinstance(output, Output) and isinstance(output.url, str) and output.url
        _bounded(output.url, 4096)
        assert output.index is None or type(output.index) is int
    for action in update.actions:
        _bounded(action.provider_ref, 200)
    if update.error is not None:
        _bounded(update.error.message, 2000)
    # Whatever came in, the normalized report renders as strict JSON.
    json.dumps(
        [update.progress, [o.url for o in update.outputs], update.provider_status],
        allow_nan=False,
    )


def _fuzz_settings(examples: int = EXAMPLES) -> Callable[[Any], Any]:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.parametrize("provider", sorted(SHAPED))
def test_shaped_bodies_never_crash_an_adapter(provider: str) -> None:
    @_fuzz_settings()
    @given(body=SHAPED[provider])
    def run(body: dict[str, Any]) -> None:
        outcome(provider, body)

    run()


@pytest.mark.parametrize("provider", sorted(SHAPED))
def test_arbitrary_objects_never_crash_an_adapter(provider: str) -> None:
    @_fuzz_settings(100)
    @given(body=st.dictionaries(st.text(max_size=10), JSON, max_size=6))
    def run(body: dict[str, Any]) -> None:
        outcome(provider, body)

    run()


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"data": value, "status": value}
    return value


@pytest.mark.parametrize("provider", sorted(SHAPED))
def test_deep_nesting_huge_strings_and_odd_types(provider: str) -> None:
    keys = [
        "status", "task_id", "taskId", "progress", "data", "payload", "code", "msg", "image_url",
        "images", "outputs", "error", "components", "resultUrls", "url", "upscaled_urls", "id",
    ]  # fmt: skip
    huge = "x" * 2_000_000
    odd: list[Any] = [
        _nested(5_000), huge, 10**4000, -(2**1000), math.nan, math.inf, -math.inf, 1e308,
        True, None, [], {}, [huge] * 200, {"resultUrl": huge}, "\x00" * 10, "\ud800",
    ]  # fmt: skip
    for value in odd:
        outcome(provider, dict.fromkeys(keys, value))
        for key in keys:
            outcome(provider, {key: value})
            outcome(provider, {"data": {key: value}, "payload": {key: value}, key: value})


def test_the_http_parser_refuses_what_no_adapter_should_see() -> None:
    deep = b'{"a":' + b"[" * 65 + b"]" * 65 + b"}"
    refused = [
        b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1' + b"0" * 5000 + b"}",
        b'{"a": "\\ud800"}', b'{"a": "\\udc00x"}', b"[" * 100_000, deep, b"\xff\xfe", b"[]",
        b'"x"', b"",
    ]  # fmt: skip
    for body in refused:
        with pytest.raises(HubError) as caught:
            parse_json_object(body)
        assert 400 <= caught.value.status_code < 500
    # Paired surrogate escapes are an ordinary emoji, and 64 levels are allowed.
    assert parse_json_object(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    parse_json_object(b'{"a":' + b"[" * 63 + b"]" * 63 + b"}")


# -- over HTTP: a 4xx, or a stored event --------------------------------------------------

_FINITE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def test_fuzzed_webhooks_are_stored_or_refused_over_http(tmp_path: Path) -> None:
    key = "adapter-fuzz-key"
    process = HubProcess(
        {"HUB_SECRET": "adapter-fuzz", "HUB_API_KEY": key, "HUB_DATA_DIR": str(tmp_path)}
    )
    process.start()
    seen: dict[str, int] = {}
    try:
        with httpx.Client(
            base_url=process.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as client:
            tasks = {
                p: client.post("/v1/tasks", json={"provider": p}).json() for p in sorted(SHAPED)
            }

            @_fuzz_settings(100)
            @given(data=st.data(), provider=st.sampled_from(sorted(SHAPED)))
            def run(data: st.DataObject, provider: str) -> None:
                odd = st.dictionaries(st.text(max_size=8), _FINITE, max_size=4)
                shaped = data.draw(st.integers(0, 4), label="shaped") > 0
                body = data.draw(SHAPED[provider] if shaped else odd)
                try:
                    encoded = json.dumps(body, allow_nan=False).encode()
                except ValueError:
                    return  # NaN or an infinity: refused by the parser (tested above)
                expected = outcome(provider, json.loads(encoded))
                task = tasks[provider]
                answer = client.post(
                    task["callback_url"],
                    content=encoded,
                    headers={"content-type": "application/json"},
                )
                seen[str(answer.status_code)] = seen.get(str(answer.status_code), 0) + 1
                if isinstance(expected, HubError):
                    assert answer.status_code == expected.status_code, answer.text
                    assert answer.json()["error"]["code"] == expected.code
                    return
                assert answer.status_code == 200, answer.text
                disposition = Disposition(answer.json()["disposition"])
                if expected.status is None:
                    assert disposition in (Disposition.UNRECOGNISED, Disposition.DUPLICATE)
                stored = client.get(f"/v1/tasks/{task['id']}").json()["events"]
                assert answer.json()["event_id"] in {e["id"] for e in stored}

            run()
    finally:
        process.stop()
    print(f"\nadapter fuzz over HTTP: answers by status {dict(sorted(seen.items()))}")
    assert seen.get("200") and sum(v for k, v in seen.items() if k.startswith("4"))
