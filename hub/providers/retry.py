"""The retry policy for provider calls, by class of failure.

* :class:`ProviderRejected` (content policy, bad input, no quota) and
  :class:`ProviderAuthError` are never retried: the same request would fail the same way.
* :class:`ProviderRateLimited` waits what ``Retry-After`` says (the backoff when it said
  nothing); a wait longer than ``max_retry_after_s`` gives up instead of retrying early.
* :class:`ProviderUnavailable` (5xx, network) retries with jittered exponential backoff:
  half the exponential delay, plus a random part up to the other half, so clients that failed
  together do not come back together.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from hub.providers.client import ProviderRateLimited, ProviderUnavailable

logger = logging.getLogger("hub.providers")

T = TypeVar("T")
_RNG = random.Random()
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry one provider call."""

    attempts: int = 5
    base_s: float = 1.0
    max_s: float = 30.0
    max_retry_after_s: float = 120.0

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``retry`` (0-based), with jitter."""
        ceiling = min(self.max_s, self.base_s * 2.0**retry)
        jitter: float = (rng if rng is not None else _RNG).uniform(0, ceiling / 2)
        return ceiling / 2 + jitter


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str = "provider call",
    sleep: Sleep = asyncio.sleep,
) -> T:
    """``await call()``, retrying rate limits and outages as :class:`RetryPolicy` says."""
    for retry in range(policy.attempts):
        last = retry == policy.attempts - 1
        try:
            return await call()
        except ProviderRateLimited as exc:
            delay = exc.retry_after if exc.retry_after is not None else policy.backoff(retry)
            if last or delay > policy.max_retry_after_s:
                raise
            reason = f"rate limited (retry after {delay:.1f}s)"
        except ProviderUnavailable as exc:
            if last:
                raise
            delay = policy.backoff(retry)
            reason = exc.provider_message
        logger.info("%s: %s; retry %d in %.2fs", what, reason, retry + 1, delay)
        await sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
