"""The :class:`Simulator`: shared state of the simulated providers, and their common checks.

Each provider module (``linkrapi``, ``midjourney_api``, ``imagineapi``, ``midapi``) adds its
routes and renders its own JSON; this module holds the jobs, the webhook deliverer, the seeded
random generator, request counters and the checks every provider API makes in the same order:
count, authenticate (in the provider module), then forced faults and the rate limit.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter, deque
from typing import Any

from starlette.requests import Request

from hub.simulator.blocklist import Blocklist
from hub.simulator.config import SimConfig
from hub.simulator.delivery import Deliverer
from hub.simulator.engine import Engine, Job


class SimError(Exception):
    """A provider error answer; each provider renders it in its own envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """Response headers (``Retry-After`` on a 429)."""
        return {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}


class Simulator:
    """Four simulated providers behind one ASGI app (see :func:`hub.simulator.create_app`)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.config.validate()
        self.rng = random.Random(self.config.seed)
        self.engine = Engine(self.config, self.rng)
        self.deliverer = Deliverer(self.config, self.rng)
        #: Requests per ``"<provider>.<endpoint>"``, for tests and the demo.
        self.calls: Counter[str] = Counter()
        self._windows: dict[tuple[str, str], deque[float]] = {}

    @property
    def jobs(self) -> dict[str, Job]:
        """Every job, by provider task id."""
        return self.engine.jobs

    async def start(self) -> None:
        """Open the webhook client."""
        await self.deliverer.start()

    async def close(self) -> None:
        """Stop every job and delivery."""
        await self.engine.close()
        await self.deliverer.close()

    def blocked_term(self, prompt: str) -> str | None:
        """The content-policy term ``prompt`` contains, or None."""
        return Blocklist(self.config.blocklist).match(prompt)

    def count(self, name: str) -> None:
        """Count one request to ``name``."""
        self.calls[name] += 1

    def admit(self, provider: str, key: str) -> None:
        """After authentication: forced faults, then the per-key rate limit."""
        config = self.config
        if config.force_5xx > 0:
            config.force_5xx -= 1
            raise SimError(502 if provider == "linkrapi" else 500, "upstream failure")
        if config.force_429 > 0:
            config.force_429 -= 1
            raise SimError(429, "too many requests", retry_after=config.retry_after_s)
        if config.rate_limit is None:
            return
        now = time.monotonic()
        window = self._windows.setdefault((provider, key), deque())
        while window and window[0] <= now - config.rate_window_s:
            window.popleft()
        if len(window) >= config.rate_limit:
            wait = math.ceil(window[0] + config.rate_window_s - now)
            raise SimError(429, "too many requests", retry_after=max(1, wait))
        window.append(now)

    def accepts(self, provider: str, key: str) -> bool:
        """Whether ``key`` is an account of ``provider`` (any key, if none are configured)."""
        allowed = self.config.keys.get(provider)
        return bool(key) and (not allowed or key in allowed)

    def new_job(self, provider: str, key: str, prompt: str, request: Request, **fields: Any) -> Job:
        """A job whose result URLs point back at this simulator as the caller reached it."""
        job = Job(
            id=fields.pop("id"),
            provider=provider,
            key=key,
            prompt=prompt,
            base_url=str(request.base_url).rstrip("/"),
            **fields,
        )
        if job.outcome.value == "ok":
            job.outcome = self.engine.pick_outcome()
        return job


def bearer(request: Request) -> str:
    """The token of an ``Authorization: Bearer …`` header ("" when there is none)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def json_object(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(await request.body())
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
