"""The PostgreSQL bus: LISTEN/NOTIFY on the database the store already uses, so replicas need
no Redis. ``HUB_BROKER_URL=postgresql://…`` (``?channel=name``, default ``callback_hub_events``).

A notification carries the committed events themselves, like the Redis bus. NOTIFY payloads
are limited to 8000 bytes (broadcaster's Postgres backend fails on bigger ones): a batch is
split over several notifications, and an event too big for one alone is announced by its
``seq`` only, so every receiver reads it from the store (:attr:`Bus.on_gap`). As with Redis,
the listener reconnects forever with backoff, a watchdog query notices a dead connection,
:meth:`PostgresBus.ping` fails while not listening (so ``/readyz`` does), and every reconnect
asks the dispatcher to catch up from the store. Good for modest rates; Redis scales further,
since every NOTIFY takes a database-wide lock at commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from typing import Any

from hub.aio import cancel_and_wait
from hub.bus.base import Bus, BusUnavailable, EventSink
from hub.models import Event, event_from_dict
from hub.store.pgconn import DATABASE_ERRORS, asyncpg, split_url

logger = logging.getLogger("hub.bus.postgres")

DEFAULT_CHANNEL = "callback_hub_events"
#: PostgreSQL refuses payloads of 8000 bytes or more; leave room for the envelope.
MAX_PAYLOAD = 7800
MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 2.0
#: The listening connection is checked this often with a query.
WATCHDOG_S = 5.0
PUBLISH_TIMEOUT_S = 1.0
START_WAIT_S = 3.0


class PostgresBus(Bus):
    """Publishes committed events with NOTIFY and feeds what LISTEN receives to the sink."""

    def __init__(self, url: str, *, channel: str | None = None) -> None:
        self.dsn, self.server_settings, options = split_url(url)
        self.channel = channel or options.get("channel") or DEFAULT_CHANNEL
        self.node = secrets.token_hex(8)
        self._sink: EventSink | None = None
        self._pool: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=0, max_size=2, server_settings=self.server_settings, timeout=5
        )
        self._listener = asyncio.create_task(self._listen(), name="hub-postgres-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), START_WAIT_S)

    async def close(self) -> None:
        await cancel_and_wait(self._listener)
        self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except DATABASE_ERRORS:
                pool.terminate()
        self._sink = None

    async def publish(self, events: list[Event]) -> None:
        if not events or self._pool is None:
            return
        self._deliver(events)  # this process at once; its own notifications are skipped
        try:
            for payload in self._payloads(events):
                await asyncio.wait_for(
                    self._pool.execute("SELECT pg_notify($1, $2)", self.channel, payload),
                    PUBLISH_TIMEOUT_S,
                )
        except DATABASE_ERRORS as exc:
            logger.warning("NOTIFY failed (%s); subscribers will catch up", exc)

    async def ping(self) -> None:
        if not self._listening.is_set() or self._pool is None:
            raise BusUnavailable("not listening for PostgreSQL notifications (reconnecting)")
        await self._pool.fetchval("SELECT 1")

    # -- messages --------------------------------------------------------------------------

    def _payloads(self, events: list[Event]) -> list[str]:
        """Notifications for ``events``, each under the payload limit, in order."""
        head = {"n": self.node, "t": time.time()}
        payloads: list[str] = []
        batch: list[str] = []
        size = 0
        for event in events:
            item = json.dumps(event.to_dict(), separators=(",", ":"))
            if len(item.encode()) > MAX_PAYLOAD:
                item = json.dumps({"too_big": event.seq})
            if batch and size + len(item) > MAX_PAYLOAD:
                payloads.append(_envelope(head, batch))
                batch, size = [], 0
            batch.append(item)
            size += len(item.encode()) + 1
        payloads.append(_envelope(head, batch))
        return payloads

    def _on_notification(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
            lag = time.time() - float(message["t"])
            mine = message.get("n") == self.node
            items = [] if mine else list(message["events"])
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed notification on %s", self.channel)
            self._gap()
            return
        if self.on_lag is not None:
            self.on_lag(max(lag, 0.0))
        events = [event_from_dict(item) for item in items if "too_big" not in item]
        if events:
            self._deliver(events)
        if len(events) < len(items):
            self._gap()  # announced by seq only: the store has it

    def _deliver(self, events: list[Event]) -> None:
        if self._sink is not None:
            try:
                self._sink(events)
            except Exception:
                logger.exception("bus sink failed")

    def _gap(self) -> None:
        if self.on_gap is not None:
            self.on_gap()

    # -- the listener ----------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = MIN_BACKOFF_S
        warned_at = 0.0
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never die silently (broadcaster #144)
                now = time.monotonic()
                if self._listening.is_set():
                    delay, warned_at = MIN_BACKOFF_S, now
                    logger.warning("PostgreSQL bus disconnected (%s); reconnecting", exc)
                elif now - warned_at > 30:
                    warned_at = now
                    logger.warning("PostgreSQL bus still down (%s); retrying", exc)
                self._listening.clear()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, MAX_BACKOFF_S)

    async def _listen_once(self) -> None:
        conn = await asyncpg.connect(
            self.dsn, server_settings=self.server_settings, timeout=5, command_timeout=5
        )
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _: closed.set())
        try:
            await conn.add_listener(self.channel, self._on_notification)
            self._on_listening()
            while True:
                # A closed connection (a restart, a terminated backend) is noticed at once; a
                # server that vanished without closing it, by the watchdog query.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), WATCHDOG_S)
                if closed.is_set() or conn.is_closed():
                    raise BusUnavailable("the listening connection was closed")
                await asyncio.wait_for(conn.fetchval("SELECT 1"), WATCHDOG_S)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()

    def _on_listening(self) -> None:
        self._listening.set()
        if self._connected():
            logger.warning("PostgreSQL bus reconnected; catching up from the store")


def _envelope(head: dict[str, Any], items: list[str]) -> str:
    prefix = json.dumps(head, separators=(",", ":"))[:-1]
    return prefix + ',"events":[' + ",".join(items) + "]}"
