"""Property-based fuzzing of the whole HTTP API against a live hub, from its own OpenAPI document.

Schemathesis generates schema-valid and schema-violating requests for every documented
operation; each answer must be documented (status, content type, JSON schema) and none may be
a 5xx. Generated tokens are random strings, so a share of the webhook requests swaps in a
genuine token (and a share of the task requests a real task id) to reach the adapters and the
store behind the token check. ``HUB_FUZZ_EXAMPLES`` raises the per-operation budget for a
longer run.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from hub import Hub
from hub.openapi import document
from hub.providers import ADAPTERS
from hub.signing import Signer
from tests.conftest import make_settings
from tests.support import HubProcess, free_port

SECRET = "fuzz-secret"
API_KEY = "fuzz-api-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "110"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def test_every_served_route_is_documented(tmp_path: Path) -> None:
    app: Any = Hub(make_settings(tmp_path)).app
    while not hasattr(app, "routes"):  # webhooks are served by an endpoint before the router
        app = app.app
    documented = document()["paths"]
    assert {"/hooks/{provider}/{token}", "/hooks/{provider}/account/{key}"} <= set(documented)
    missing = []
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        methods = {m.lower() for m in route.methods or ()} - {"head"}
        item = documented.get(route.path, {})
        missing += [f"{m.upper()} {route.path}" for m in sorted(methods) if m not in item]
    assert not missing, f"add these routes to hub/openapi.py: {missing}"


class Fixtures:
    """Real ids and tokens the fuzzer swaps in so requests get past the first check."""

    def __init__(self, client: httpx.Client) -> None:
        signer = Signer((SECRET,), callback_max_age=3600, subscriber_max_age=3600)
        self.tokens: dict[str, list[str]] = {}
        self.account_keys = {p: signer.account_key(p) for p in ADAPTERS}
        self.task_ids: list[str] = []
        for provider in sorted(ADAPTERS):
            for _ in range(3):
                task = client.post("/v1/tasks", json={"provider": provider}).json()
                self.task_ids.append(task["id"])
                self.tokens.setdefault(provider, []).append(
                    signer.callback_token(task["id"], provider)
                )
        # Terminal tasks answer ?wait= at once, so long-polls never stall the run.
        self.finished: list[str] = []
        for _ in range(3):
            task = client.post("/v1/tasks", json={"provider": "generic"}).json()
            client.post(task["callback_url"], json={"status": "succeeded"})
            self.finished.append(task["id"])


def _swap_in(case: Any, data: st.DataObject, fx: Fixtures) -> None:
    if isinstance(case.body, dict) and case.path == "/v1/tasks":
        case.body.pop("submit", None)  # an extra property may happen to be called that
    params = case.path_parameters or {}
    provider = params.get("provider")
    genuine = data.draw(st.booleans(), label="genuine")
    if genuine and provider in ADAPTERS:
        if "token" in params:
            params["token"] = data.draw(st.sampled_from(fx.tokens[provider]))
        elif "key" in params:
            params["key"] = fx.account_keys[provider]
    if genuine and "task_id" in params and not case.path.endswith("/actions"):
        # Finished tasks answer ?wait= at once and their streams end after the replay.
        pool = fx.task_ids if case.path.endswith("/bind") else fx.finished
        params["task_id"] = data.draw(st.sampled_from(pool))


def test_fuzz_api_against_a_live_hub(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # a provider call would fail fast (and show)
    env = {"HUB_SECRET": SECRET, "HUB_API_KEY": API_KEY, "HUB_DATA_DIR": str(tmp_path)}
    env.update({f"HUB_{p.replace('-', '_').upper()}_URL": dead for p in ADAPTERS})
    process = HubProcess({**env, "HUB_SUBMIT_ATTEMPTS": "1", "HUB_SQLITE_SYNCHRONOUS": "NORMAL"})
    process.start()
    stats: Counter[str] = Counter()
    try:
        with httpx.Client(base_url=process.url, headers=AUTH, timeout=10) as client:
            served = client.get("/openapi.json")
            assert served.status_code == 200
            fixtures = Fixtures(client)
        doc = served.json()
        # Submitting calls the provider's API (tests/test_submit_e2e.py covers it against the
        # simulator); here it would only measure a dead provider.
        del doc["components"]["schemas"]["CreateTask"]["properties"]["submit"]
        schema = schemathesis.openapi.from_dict(doc)
        # Unknown query parameters are ignored by design (as most HTTP APIs do), and the API
        # key is set (or left out) by the test itself.
        schema.config.generation.update(
            allow_extra_parameters=False, with_security_parameters=False
        )
        streams = httpx.Client(timeout=10)
        with requests.Session() as session, streams:
            for result in schema.get_all_operations():
                assert isinstance(result, Ok), result
                operation = result.ok()
                spec = doc["paths"][operation.path][operation.method.lower()]
                modes = [GenerationMode.POSITIVE]
                if spec.get("parameters") or spec.get("requestBody"):  # else nothing to break
                    modes.append(GenerationMode.NEGATIVE)
                for mode in modes:
                    runner = Runner(operation, process.url, session, streams, fixtures, stats)
                    runner.run(mode)
    finally:
        process.stop()
    print(
        f"\nAPI fuzz: {stats['requests']} requests tried over {stats['operations']} "
        f"operation runs, {stats['5xx']} 5xx seen; statuses "
        + ", ".join(f"{k}: {v}" for k, v in sorted(stats.items()) if k.isdigit())
    )
    assert stats["5xx"] == 0
    assert stats["requests"] >= 1000


class Runner:
    """Fuzzes one operation in one generation mode."""

    def __init__(
        self,
        operation: Any,
        base_url: str,
        session: requests.Session,
        streams: httpx.Client,
        fixtures: Fixtures,
        stats: Counter[str],
    ) -> None:
        self.operation = operation
        self.base_url = base_url
        self.session = session
        self.streams = streams
        self.fixtures = fixtures
        self.stats = stats
        self.stream = operation.path.endswith("/events")

    def run(self, mode: GenerationMode) -> None:
        self.stats["operations"] += 1

        @settings(
            # Each stream that opens waits a moment for its first bytes: fewer of those.
            max_examples=EXAMPLES // 2 if self.stream else EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            # Schemathesis strategies are big and filter a lot by design.
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.filter_too_much,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )
        @given(case=self.operation.as_strategy(generation_mode=mode), data=st.data())
        def check(case: Any, data: st.DataObject) -> None:
            _swap_in(case, data, self.fixtures)
            # Every tenth request goes without the key: /v1 must say 401, never serve it.
            headers = {} if data.draw(st.integers(0, 9), label="anon") == 0 else AUTH
            response = self.call(case, headers)
            self.stats["requests"] += 1
            self.stats[str(response.status_code)] += 1
            if response.status_code >= 500:
                self.stats["5xx"] += 1
            if not headers and case.path.startswith("/v1/"):
                assert response.status_code == 401, response.text
            case.validate_response(response, checks=CHECKS, headers=headers)

        check()

    def call(self, case: Any, headers: dict[str, str]) -> Any:
        if not self.stream:
            return case.call(
                base_url=self.base_url, session=self.session, headers=headers, timeout=30
            )
        # Open the stream, keep what arrives within a moment, and hang up.
        sent = case.as_transport_kwargs(base_url=self.base_url, headers=headers)
        body = b""
        with self.streams.stream(
            sent["method"], sent["url"], headers=sent.get("headers"), params=sent.get("params")
        ) as response:
            # The headers had the full timeout; the body gets a moment, since an open stream
            # is quiet until its next heartbeat (httpcore reads this dict as the body starts).
            response.request.extensions["timeout"] = httpx.Timeout(10, read=0.05).as_dict()
            try:
                for chunk in response.iter_bytes():
                    body += chunk
            except httpx.ReadTimeout:
                pass
        kept = httpx.Response(
            response.status_code, headers=response.headers, content=body, request=response.request
        )
        kept.elapsed = response.elapsed
        return kept


@pytest.mark.parametrize("path", ["/openapi.json"])
async def test_openapi_is_served(served: tuple[Hub, httpx.AsyncClient], path: str) -> None:
    _, client = served
    response = await client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["openapi"].startswith("3.1")
    assert "/hooks/{provider}/{token}" in body["paths"]
