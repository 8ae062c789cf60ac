"""The :class:`Hub`: register tasks, take in provider reports, and wait for results."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp

from hub.bus import Bus, bus_from_url
from hub.commit import GroupCommitter
from hub.config import Settings
from hub.dispatch import Dispatcher
from hub.errors import ConfigError, TaskNotFound, WaitTimeout
from hub.metrics import HubMetrics
from hub.models import Event, Source, Status, Task, Update
from hub.poller import Poller
from hub.providers import get_adapter
from hub.providers.clients import ProviderClients
from hub.signing import Signer
from hub.sse import FanOut
from hub.sse.retention import Pruner
from hub.sse.signals import on_termination
from hub.store import Store, store_from_url
from hub.store.base import Bind, CreateTask, Ingest, TaskFilter, WriteResult
from hub.submit import Submitter
from hub.waiters import Waiters

logger = logging.getLogger("hub")

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_task_id() -> str:
    """A sortable, unguessable task id: 48 bits of milliseconds, then 80 random bits."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "tsk_" + "".join(reversed(chars))


class Hub:
    """The callback hub: a library object and, through :attr:`app`, an ASGI application.

    Use it as an async context manager (or call :meth:`start` and :meth:`close`)::

        async with Hub(Settings.from_env()) as hub:
            task = await hub.register("linkrapi")
            ...  # hand hub.callback_url(task) to the provider
            done = await hub.wait(task.id, timeout=300)
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        bus: Bus | None = None,
    ) -> None:
        settings = (settings or Settings.from_env()).with_generated_secrets()
        self.settings = settings
        self.signer = Signer(
            settings.secret,
            callback_max_age=settings.token_max_age,
            subscriber_max_age=settings.subscriber_token_max_age,
        )
        self.store = store or store_from_url(
            settings.effective_database_url, sqlite_synchronous=settings.sqlite_synchronous
        )
        self.bus = bus or bus_from_url(settings.broker_url)
        self.waiters = Waiters()
        self.dispatcher = Dispatcher(self.store)
        self.dispatcher.add_listener(self.waiters.on_event)
        # One listener feeds every local event stream (hub/sse), however many there are.
        self.fanout = FanOut(
            self.store,
            lambda: self.dispatcher.cursor,
            heartbeat_s=settings.sse_heartbeat_s,
            buffer_bytes=settings.sse_buffer_bytes,
            max_streams=settings.sse_max_streams,
        )
        self.dispatcher.add_listener(self.fanout.on_event)
        self.pruner = Pruner(self.store, settings.log_retention_s)
        self.metrics = HubMetrics.for_hub(self)
        self.bus.on_reconnect = self._bus_reconnected
        self.bus.on_gap = self.dispatcher.request_catch_up
        self._committer = GroupCommitter(
            self.store.write,
            self._publish,
            max_batch=settings.max_batch,
            ping=self.store.ping,
            on_batch=self.metrics.commit,
        )
        self.providers = ProviderClients(settings)
        self.poller = Poller(self, self.providers)
        self._submitter = Submitter(self, self.providers)
        self._app: ASGIApp | None = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and the bus; start committing and dispatching."""
        if self._started:
            return
        # A part that fails to start (Redis down, say) must not leave the parts before it
        # running: open database threads would keep the process from exiting.
        async with contextlib.AsyncExitStack() as undo:
            await self.store.start()
            undo.push_async_callback(self.store.close)
            await self.dispatcher.start()
            undo.push_async_callback(self.dispatcher.close)
            await self.bus.start(self.dispatcher.on_bus)
            undo.push_async_callback(self.bus.close)
            self.fanout.start()
            undo.push_async_callback(self.fanout.close)
            self.pruner.start()
            undo.push_async_callback(self.pruner.close)
            self._committer.start()
            undo.push_async_callback(self._committer.close)
            await self.providers.start()
            undo.push_async_callback(self.providers.close)
            self._started = True
            undo.callback(setattr, self, "_started", False)
            await self.poller.start()
            undo.pop_all()  # running: close() owns the shutdown from here

    async def close(self) -> None:
        """Commit what is queued, then close the bus and the store."""
        if not self._started:
            return
        self._started = False
        await self.fanout.close()  # streams end first: clients resume elsewhere
        await self.poller.close()
        await self._committer.close()
        await self.providers.close()
        await self.dispatcher.close()
        await self.bus.close()
        await self.pruner.close()
        await self.store.close()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """A Starlette/FastAPI lifespan that runs the hub; combine it with the host's own."""
        async with self:
            # SIGTERM ends open streams at once; the server would otherwise wait for them
            # before it lets this lifespan shut down.
            with on_termination(self.fanout.drain):
                yield

    @property
    def app(self) -> ASGIApp:
        """The ASGI application (routes under ``/v1``, ``/hooks``, health and metrics)."""
        if self._app is None:
            from hub.app import create_app

            self._app = create_app(self)
        return self._app

    @property
    def running(self) -> bool:
        """Whether :meth:`start` has run and :meth:`close` has not."""
        return self._started

    # -- tasks ---------------------------------------------------------------------------

    async def register(
        self,
        provider: str,
        *,
        external_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        deadline_s: float | None = None,
        parent_id: str | None = None,
    ) -> Task:
        """Create a task; hand :meth:`callback_url` of it to the provider."""
        get_adapter(provider)
        now = time.time()
        task = Task(
            id=new_task_id(),
            provider=provider,
            status=Status.QUEUED,
            created_at=now,
            updated_at=now,
            external_id=external_id,
            parent_id=parent_id,
            metadata=dict(metadata or {}),
            deadline_at=now + deadline_s if deadline_s else None,
        )
        # The first poll is due once the task has been silent for poll_after_s.
        op = CreateTask(task, next_poll_at=now + self.settings.poll_after_s)
        result = await self._committer.submit(op)
        assert result.task is not None
        return result.task

    async def bind(self, task_id: str, external_id: str) -> Task:
        """Record the provider's task id; events that arrived for it earlier are attached."""
        result = await self._committer.submit(Bind(task_id, external_id))
        assert result.task is not None
        return result.task

    async def submit(
        self,
        provider: str,
        *,
        prompt: str,
        options: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        deadline_s: float | None = None,
        base_url: str | None = None,
    ) -> Task:
        """Register a task and start it at ``provider`` with its callback URL wired in.

        ``options`` are provider fields sent as they are (``mode``, ``aspectRatio``…). Returns
        the bound task, or the task ``failed`` when the provider refused the prompt (content
        policy: category ``moderation``, with the provider's message). Raises a
        :class:`~hub.providers.client.ProviderError` (``.task`` set) when the credentials are
        refused or the provider stays unavailable or rate limited through the retries.
        """
        return await self._submitter.submit(
            provider,
            prompt=prompt,
            options=options,
            metadata=metadata,
            deadline_s=deadline_s,
            base_url=base_url,
        )

    async def action(
        self,
        task_id: str,
        kind: str,
        *,
        index: int | None = None,
        metadata: dict[str, Any] | None = None,
        deadline_s: float | None = None,
        base_url: str | None = None,
    ) -> Task:
        """Start ``upscale``/``variation`` (``index`` 1-4) or ``reroll`` on a finished task.

        The follow-up is a child task (``parent_id`` = ``task_id``) with its own callback URL;
        it is returned bound, and completes like any other task.
        """
        return await self._submitter.action(
            task_id, kind, index=index, metadata=metadata, deadline_s=deadline_s, base_url=base_url
        )

    async def get(self, task_id: str) -> Task:
        """The task; raises :class:`~hub.errors.TaskNotFound`."""
        task = await self.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def list_tasks(self, filters: TaskFilter | None = None) -> list[Task]:
        """Tasks matching ``filters``, newest first."""
        return await self.store.list_tasks(filters or TaskFilter())

    async def events(self, task_id: str) -> list[Event]:
        """Every stored event of a task, duplicates and stale ones included."""
        await self.get(task_id)
        return await self.store.task_events(task_id)

    async def receive(
        self,
        provider: str,
        update: Update,
        *,
        task_id: str | None = None,
        raw: Any = None,
        source: Source = Source.WEBHOOK,
    ) -> WriteResult:
        """Store one provider report and apply it; returns once it is committed."""
        return await self._committer.submit(
            Ingest(
                provider=provider,
                update=update,
                source=source,
                received_at=time.time(),
                raw=raw,
                task_id=task_id,
            )
        )

    async def wait(self, task_id: str, *, timeout: float) -> Task:
        """The task once it is terminal; at once if it already is.

        Raises :class:`~hub.errors.WaitTimeout` (a ``TimeoutError``, carrying the last state
        seen) when ``timeout`` seconds pass first, and :class:`~hub.errors.TaskNotFound`.
        """
        future = self.waiters.add(task_id)
        try:
            task = await self.get(task_id)
            if task.terminal:
                return task
            try:
                await asyncio.wait_for(future, timeout)
            except TimeoutError:
                task = await self.get(task_id)
                if task.terminal:
                    return task
                raise WaitTimeout(task) from None
            return await self.get(task_id)
        finally:
            self.waiters.discard(task_id, future)

    # -- URLs ----------------------------------------------------------------------------

    def base_url(self, fallback: str | None = None) -> str:
        """Where the hub's routes are reachable: ``HUB_PUBLIC_URL``, else ``fallback``."""
        base = self.settings.public_url or fallback
        if base is None:
            base = f"http://{self.settings.host}:{self.settings.port}"
        return base.rstrip("/")

    def callback_url(self, task: Task, *, base_url: str | None = None) -> str:
        """The signed URL the provider must post this task's webhooks to."""
        token = self.signer.callback_token(task.id, task.provider)
        return f"{self.base_url(base_url)}/hooks/{quote(task.provider)}/{token}"

    def events_url(self, task: Task, *, base_url: str | None = None) -> str:
        """A URL that streams this task's events, usable from a browser without the API key."""
        token = self.signer.subscriber_token(task.id)
        return f"{self.base_url(base_url)}/v1/tasks/{task.id}/events?token={token}"

    def account_hook_url(self, provider: str, *, base_url: str | None = None) -> str:
        """The one webhook URL for providers that take a URL per account (ImagineAPI)."""
        adapter = get_adapter(provider)
        if not adapter.account_level:
            raise ConfigError(f"{provider} takes a callback URL per task, not per account")
        key = self.signer.account_key(provider)
        return f"{self.base_url(base_url)}/hooks/{quote(provider)}/account/{key}"

    # -- internals -----------------------------------------------------------------------

    def _bus_reconnected(self) -> None:
        # Messages published while the bus was away are only in the store: read it now.
        self.metrics.bus_reconnects.inc()
        self.dispatcher.request_catch_up()

    async def _publish(self, results: list[WriteResult]) -> None:
        seen: set[int] = set()
        emitted = []
        for result in results:
            for event in result.events:
                if event.seq is not None and event.seq not in seen:
                    seen.add(event.seq)
                    emitted.append(event)
        if emitted:
            emitted.sort(key=lambda e: e.seq or 0)
            await self.bus.publish(emitted)


def generate_secret() -> str:
    """A fresh random secret suitable for ``HUB_SECRET``."""
    return secrets.token_urlsafe(32)
