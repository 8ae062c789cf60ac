"""Abuse limits on the HTTP surface: webhooks per client address, and slow request bodies.

Both are per process and in memory, and both sit on the webhook hot path, so the common case
costs a dict lookup or two:

* :class:`RateLimiter` keeps a token bucket per client address (``HUB_HOOK_RATE`` per second,
  bursts of ``HUB_HOOK_BURST``); exempt addresses (loopback by default, so a local reverse
  proxy or benchmark is never throttled) are remembered after the first look.
* :class:`BodyDeadlines` ends a request whose body has not fully arrived ``HUB_BODY_TIMEOUT_S``
  after the request started (slowloris). One periodic sweep serves every request: a timer per
  request (``asyncio.timeout``) costs more than the rest of a webhook's bookkeeping.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Receive

from hub.http import ApiError

if TYPE_CHECKING:
    from hub.config import Settings

_EXEMPT: list[float] = []  # marker entry: this address is never limited


class RateLimiter:
    """Token buckets keyed by client address."""

    def __init__(
        self,
        rate: float,
        burst: int,
        exempt: Iterable[str] = (),
        *,
        max_clients: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._exact: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in exempt:
            if "/" in entry:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                self._exact.add(str(ipaddress.ip_address(entry)))
        # address -> [tokens, last refill], or _EXEMPT. Insertion-ordered, so the oldest
        # address is dropped first when full (it restarts with a full bucket: never stricter).
        self._clients: dict[str, list[float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter | None:
        """The limiter ``settings`` ask for, or None when ``HUB_HOOK_RATE`` is 0."""
        if settings.hook_rate <= 0:
            return None
        exempt = [part.strip() for part in settings.hook_rate_exempt.split(",") if part.strip()]
        return cls(settings.hook_rate, settings.hook_burst, exempt)

    def retry_after(self, address: str) -> float:
        """0 when a request from ``address`` may go ahead now, else seconds until it may."""
        entry = self._clients.get(address)
        if entry is _EXEMPT:
            return 0.0
        now = self._clock()
        if entry is None:
            if len(self._clients) >= self._max_clients:
                del self._clients[next(iter(self._clients))]
            if self._is_exempt(address):
                self._clients[address] = _EXEMPT
                return 0.0
            self._clients[address] = [self.burst - 1.0, now]
            return 0.0
        tokens = min(self.burst, entry[0] + (now - entry[1]) * self.rate)
        entry[1] = now
        if tokens >= 1.0:
            entry[0] = tokens - 1.0
            return 0.0
        entry[0] = tokens
        return (1.0 - tokens) / self.rate

    def check(self, address: str) -> None:
        """Raise 429 with ``Retry-After`` when ``address`` is over its rate."""
        wait = self.retry_after(address)
        if wait:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                f"too many webhooks from this address; retry in {seconds} s",
                {"Retry-After": str(seconds)},
            )

    def _is_exempt(self, address: str) -> bool:
        if address in self._exact:
            return True
        if not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


class BodyDeadlines:
    """Refuses (408) request bodies that arrive too slowly; one sweep for all requests."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._interval = min(1.0, max(0.05, seconds / 4))
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._armed: asyncio.AbstractEventLoop | None = None  # the loop the sweep runs on

    def guard(self, receive: Receive) -> Receive:
        """``receive`` with the body due ``seconds`` from now; later messages pass through."""
        if self.seconds <= 0:
            return receive
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        waiting = self._waiting
        done = False

        async def guarded() -> Message:
            nonlocal done
            if done:
                return await receive()
            task = asyncio.current_task(loop)
            assert task is not None
            waiting[task] = deadline
            if self._armed is not loop:
                self._armed = loop
                loop.call_later(self._interval, self._sweep, loop)
            try:
                message = await receive()
            except asyncio.CancelledError:
                self._refuse_if_expired(task)
                raise
            finally:
                del waiting[task]
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        return guarded

    def _refuse_if_expired(self, task: asyncio.Task[Any]) -> None:
        # Ours only if the sweep cancelled it and nothing else did as well (a shutdown).
        if task in self._expired:
            self._expired.discard(task)
            if task.uncancel() == 0:
                raise ApiError(
                    408,
                    "body_timeout",
                    f"the request body did not arrive within {self.seconds:g} s",
                    {"Connection": "close"},
                )

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        self._expired &= self._waiting.keys()
        for task, deadline in self._waiting.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        if self._waiting:
            loop.call_later(self._interval, self._sweep, loop)
        else:
            self._armed = None
