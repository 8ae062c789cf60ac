"""Webhook delivery with faults: drop, duplicate, delay and reorder.

Deliveries of one job go out one at a time, in order, from a per-job sender, so a fault is
exactly what the knobs say. Reordering holds a delivery back and sends it after the next one
(or after the terminal one), so the receiver sees an older state after a newer one. Like the
four providers it plays, the simulator never retries a failed delivery.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from hub.aio import cancel_and_wait
from hub.simulator.config import SimConfig

logger = logging.getLogger("hub.simulator")

_Item = tuple[str, dict[str, Any], bool]


@dataclass
class DeliveryRecord:
    """What happened to one webhook: ``dropped``, ``held``, ``sent`` or ``error``."""

    job_id: str
    provider: str
    url: str
    body: dict[str, Any]
    outcome: str
    terminal: bool
    status_code: int | None = None
    at: float = 0.0


class Deliverer:
    """Posts webhooks for jobs, applying the configured faults."""

    def __init__(self, config: SimConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.log: list[DeliveryRecord] = []
        self._http: httpx.AsyncClient | None = None
        self._queues: dict[str, asyncio.Queue[_Item | None]] = {}
        self._held: dict[str, list[_Item]] = {}
        self._senders: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the HTTP client used for every delivery."""
        self._http = httpx.AsyncClient(timeout=15.0)  # midapi documents a 15 s timeout

    async def close(self) -> None:
        """Stop sending; undelivered webhooks are lost, as at a real provider."""
        await cancel_and_wait(list(self._senders))
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def send(
        self, job_id: str, provider: str, url: str, body: dict[str, Any], *, terminal: bool
    ) -> None:
        """Queue one webhook for ``job_id``; faults are drawn here."""
        config = self.config
        if self.rng.random() < config.drop_rate:
            self._record(job_id, provider, url, body, "dropped", terminal)
            if terminal:
                self._flush(job_id, provider, close=True)
            return
        copies = 2 if self.rng.random() < config.duplicate_rate else 1
        if not terminal and self.rng.random() < config.reorder_rate:
            self._held.setdefault(job_id, []).extend([(url, body, terminal)] * copies)
            self._record(job_id, provider, url, body, "held", terminal)
            return
        queue = self._queue(job_id, provider)
        for _ in range(copies):
            queue.put_nowait((url, body, terminal))
        self._flush(job_id, provider, close=terminal)

    def _flush(self, job_id: str, provider: str, *, close: bool) -> None:
        held = self._held.pop(job_id, [])
        if not held and not close:
            return
        queue = self._queue(job_id, provider)
        for item in held:
            queue.put_nowait(item)
        if close:
            queue.put_nowait(None)
            self._queues.pop(job_id, None)

    def _queue(self, job_id: str, provider: str) -> asyncio.Queue[_Item | None]:
        queue = self._queues.get(job_id)
        if queue is None:
            queue = self._queues[job_id] = asyncio.Queue()
            task = asyncio.create_task(self._sender(job_id, provider, queue))
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)
        return queue

    async def _sender(self, job_id: str, provider: str, queue: asyncio.Queue[_Item | None]) -> None:
        while (item := await queue.get()) is not None:
            url, body, terminal = item
            if self.config.delay_s:
                await asyncio.sleep(self.config.delay_s)
            await self._post(job_id, provider, url, body, terminal)

    async def _post(
        self, job_id: str, provider: str, url: str, body: dict[str, Any], terminal: bool
    ) -> None:
        assert self._http is not None, "Deliverer.start() was not called"
        try:
            response = await self._http.post(url, json=body)
        except httpx.HTTPError as exc:
            logger.info("webhook for %s to %s failed: %s", job_id, url, type(exc).__name__)
            self._record(job_id, provider, url, body, "error", terminal)
            return
        self._record(job_id, provider, url, body, "sent", terminal, response.status_code)

    def _record(
        self,
        job_id: str,
        provider: str,
        url: str,
        body: dict[str, Any],
        outcome: str,
        terminal: bool,
        status_code: int | None = None,
    ) -> None:
        self.log.append(
            DeliveryRecord(job_id, provider, url, body, outcome, terminal, status_code, time.time())
        )
