"""The Redis bus: committed events over one pub/sub channel shared by every replica.

Why pub/sub and not Streams: the store already is the durable, ordered log (contiguous
``seq``), and the dispatcher repairs any gap from it. Pub/sub adds no second copy to trim, keeps
nothing in Redis (a restarted Redis loses nothing that matters), and is the fastest path. What
it does not do, replay after a disconnect, the store does: after every reconnect the bus asks
the dispatcher to catch up (:attr:`Bus.on_reconnect`).

A replica hands its own committed events to its own dispatcher directly and skips its own
message when it comes back, so its local streams and waiters never wait for Redis.

The failures this module is written against:

* broadcaster #144, a listener that hangs silently after Redis goes away: the listener
  reconnects forever with capped, jittered backoff, and a PING watchdog on the subscription
  catches a connection that died without an error;
* python-socketio #1581, Redis dropping a slow subscriber (``client-output-buffer-limit``):
  that is just a disconnect here, so the same reconnect and catch-up apply;
* Mercure #758, health that stays green while delivery is dead: :meth:`RedisBus.ping` fails
  whenever the subscription is down, so ``/readyz`` answers 503.

The URL may carry ``?channel=name`` (default ``callback-hub:events``) so several hubs, or tests,
can share one Redis.
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
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hub.aio import cancel_and_wait
from hub.bus.base import Bus, BusUnavailable, EventSink
from hub.errors import MissingExtraError
from hub.models import Event, event_from_dict

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
    raise MissingExtraError("redis", "redis") from exc

logger = logging.getLogger("hub.bus.redis")

DEFAULT_CHANNEL = "callback-hub:events"
#: Longest pause between reconnect attempts, and the first one.
MAX_BACKOFF_S = 2.0
MIN_BACKOFF_S = 0.1
#: The subscription is pinged this often; silence for two rounds means it is dead.
WATCHDOG_S = 5.0
#: A publish that takes longer is abandoned: subscribers catch up from the store.
PUBLISH_TIMEOUT_S = 1.0
#: How long :meth:`RedisBus.start` waits for the first subscription before going on anyway.
START_WAIT_S = 3.0


def split_channel(url: str) -> tuple[str, str]:
    """``(redis_url, channel)``: the ``channel`` query parameter taken out of ``url``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    channel = next((v for k, v in query if k == "channel" and v), DEFAULT_CHANNEL)
    kept = urlencode([(k, v) for k, v in query if k != "channel"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, kept, parts.fragment)), channel


class RedisBus(Bus):
    """Publishes committed events to a Redis channel and feeds what arrives to the sink."""

    def __init__(self, url: str, *, channel: str | None = None) -> None:
        self.url, url_channel = split_channel(url)
        self.channel = channel or url_channel
        self._client: Any = None
        self._sink: EventSink | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        #: Tells this process's messages apart from other replicas'.
        self.node = secrets.token_hex(8)
        #: How many times the subscription came back after being lost.

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        self._client = self._new_client()
        self._listener = asyncio.create_task(self._listen(), name="hub-redis-bus")
        # Wait briefly so that events published right after start are seen; if Redis is
        # down the hub still starts (not ready) and the listener keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), START_WAIT_S)

    async def close(self) -> None:
        await cancel_and_wait(self._listener)
        self._listener = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._sink = None

    async def publish(self, events: list[Event]) -> None:
        if not events or self._client is None:
            return
        # This process's own listeners get the events at once, not after a Redis round trip;
        # the copy that comes back over the channel is recognised by its node id and skipped.
        self._deliver(events)
        message = json.dumps(
            {"n": self.node, "t": time.time(), "events": [e.to_dict() for e in events]},
            separators=(",", ":"),
        )
        try:
            await asyncio.wait_for(self._client.publish(self.channel, message), PUBLISH_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            # Committed is committed: the store has the events, and every subscriber's
            # dispatcher finds them on its next catch-up.
            logger.warning("publish to Redis failed (%s); subscribers will catch up", exc)

    async def ping(self) -> None:
        if not self._subscribed.is_set():
            raise BusUnavailable("the Redis subscription is down (reconnecting)")
        if self._client is None:
            raise BusUnavailable("the Redis bus is not started")
        await self._client.ping()

    # -- the listener ----------------------------------------------------------------------

    def _new_client(self) -> Any:
        # redis-py's own retries would reconnect behind our back, and we must know about every
        # reconnect to catch up; so errors surface here and this module retries.
        return Redis.from_url(
            self.url,
            socket_connect_timeout=2,
            socket_timeout=5,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
        )

    async def _listen(self) -> None:
        delay = MIN_BACKOFF_S
        warned_at = 0.0
        while True:
            try:
                await self._subscribe_and_read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anything at all: never die silently (broadcaster #144)
                now = time.monotonic()
                if self._subscribed.is_set():
                    delay = MIN_BACKOFF_S
                    warned_at = now
                    logger.warning("Redis bus disconnected (%s); reconnecting", _describe(exc))
                elif now - warned_at > 30:
                    warned_at = now
                    logger.warning("Redis bus still down (%s); retrying", _describe(exc))
                self._subscribed.clear()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, MAX_BACKOFF_S)

    async def _subscribe_and_read(self) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            self._on_subscribed()
            heard = pinged = time.monotonic()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                now = time.monotonic()
                if message is not None:
                    heard = now
                    if message["type"] == "message":
                        self._receive(message["data"])
                if now - heard > 2 * WATCHDOG_S:
                    raise BusUnavailable("no answer from Redis on the subscription")
                if now - pinged > WATCHDOG_S:
                    pinged = now
                    await pubsub.ping()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 2)

    def _on_subscribed(self) -> None:
        self._subscribed.set()
        if self._connected():
            logger.warning("Redis bus reconnected; catching up from the store")

    def _receive(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            lag = time.time() - float(message["t"])
            mine = message.get("n") == self.node
            events = [] if mine else [event_from_dict(item) for item in message["events"]]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed message on %s", self.channel)
            if self.on_gap is not None:
                self.on_gap()  # something was published; read the store to be sure
            return
        if self.on_lag is not None:
            self.on_lag(max(lag, 0.0))
        if events:
            self._deliver(events)

    def _deliver(self, events: list[Event]) -> None:
        if self._sink is not None:
            try:
                self._sink(events)
            except Exception:
                logger.exception("bus sink failed")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
