"""A Python client for a remote hub: tasks over HTTP, and event streams that resume on their own.

::

    async with HubClient("http://hub:8000", api_key=KEY) as client:
        task = await client.register("linkrapi", metadata={"channel": "renders"})
        async for message in client.stream(task_id=task["id"]):
            print(message.kind, message.event or message.task)   # ends after the terminal event
        done = await client.wait(task["id"], timeout=300)

:meth:`HubClient.stream` reconnects after a dropped connection, a server restart or a cut for
being slow, with ``Last-Event-ID`` set to the last id it yielded, so the caller sees every
event once and in order. It honours the server's ``retry:`` hint and ``Retry-After``, and
reconnects when nothing (not even a heartbeat) arrived for ``read_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from hub.errors import HubError, WaitTimeout
from hub.models import Event, Task, event_from_dict, task_from_dict

_WAIT_CHUNK_S = 30.0


class HubHTTPError(HubError):
    """The hub refused a request (4xx) or failed it (5xx)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message of a stream.

    ``kind`` is ``event`` (a log event, in ``event``), ``state`` (a task stream's opening
    snapshot, in ``task``) or ``reset`` (the resume position was gone: ``task`` or ``tasks``
    hold the current state and ``reason`` says why).
    """

    kind: str
    id: int | None
    event: Event | None = None
    task: Task | None = None
    tasks: list[Task] = field(default_factory=list)
    reason: str | None = None

    @property
    def terminal(self) -> bool:
        """Whether the message shows a task in a final state (the end of a task stream)."""
        if self.event is not None:
            return self.event.status is not None and self.event.status.terminal
        return self.task is not None and self.task.terminal


class HubClient:
    """Talks to a hub over HTTP; use it as an async context manager."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_backoff: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self._read_timeout = read_timeout
        self._max_backoff = max_backoff

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    # -- tasks ---------------------------------------------------------------------------

    async def register(
        self,
        provider: str,
        *,
        external_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        deadline_s: float | None = None,
    ) -> dict[str, Any]:
        """Register a task; the answer holds ``id``, ``callback_url`` and ``events_url``."""
        body: dict[str, Any] = {"provider": provider}
        for key, value in (
            ("external_id", external_id),
            ("metadata", metadata),
            ("deadline_s", deadline_s),
        ):
            if value is not None:
                body[key] = value
        return _json(await self._http.post("/v1/tasks", json=body))

    async def action(self, task_id: str, kind: str, *, index: int | None = None) -> dict[str, Any]:
        """Start ``upscale``/``variation`` (``index`` 1-4) or ``reroll`` on a finished task.

        The answer is the child task, bound to the provider's new job; wait on its ``id``.
        """
        body: dict[str, Any] = {"action": kind}
        if index is not None:
            body["index"] = index
        return _json(await self._http.post(f"/v1/tasks/{task_id}/actions", json=body))

    async def get(self, task_id: str) -> Task:
        """The task's current state."""
        return task_from_dict(_json(await self._http.get(f"/v1/tasks/{task_id}")))

    async def wait(self, task_id: str, *, timeout: float) -> Task:
        """The task once it is terminal (long-polling); raises :class:`~hub.WaitTimeout`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            chunk = max(0.0, min(remaining, _WAIT_CHUNK_S))
            response = await self._http.get(
                f"/v1/tasks/{task_id}",
                params={"wait": f"{chunk:.3f}"},
                timeout=httpx.Timeout(self._http.timeout.connect, read=chunk + 30),
            )
            task = task_from_dict(_json(response))
            if task.terminal:
                return task
            if time.monotonic() >= deadline:
                raise WaitTimeout(task)

    # -- streams -------------------------------------------------------------------------

    async def stream(
        self,
        *,
        task_id: str | None = None,
        token: str | None = None,
        stay_open: bool = False,
        task_ids: Iterable[str] = (),
        providers: Iterable[str] = (),
        types: Iterable[str] = (),
        statuses: Iterable[str] = (),
        channel: str | None = None,
        last_event_id: int | None = None,
    ) -> AsyncIterator[StreamMessage]:
        """Follow events, reconnecting on its own; every event is yielded once, in order.

        With ``task_id``: that task's stream (authorized by ``token``, a subscriber token, or
        the API key), which ends after the task's terminal event unless ``stay_open``.
        Otherwise ``/v1/events`` with the given filters, which never ends by itself.
        """
        if task_id is not None:
            path = f"/v1/tasks/{task_id}/events"
            params: list[tuple[str, str]] = [("token", token)] if token else []
            if stay_open:
                params.append(("stay_open", "true"))
        else:
            path = "/v1/events"
            params = [
                (name, ",".join(values))
                for name, values in (
                    ("task_id", task_ids),
                    ("provider", providers),
                    ("type", types),
                    ("status", statuses),
                )
                if list(values)
            ]
            if channel is not None:
                params.append(("channel", channel))
        position = _Position(last_event_id, ends=task_id is not None and not stay_open)
        backoff = _Backoff(self._max_backoff)
        while True:
            try:
                async for message in self._connect(path, params, position, backoff):
                    yield message
            except httpx.TransportError:
                pass  # dropped, cut off for being slow, or restarting: resume from the last id
            if position.done:
                return
            await backoff.sleep(position.retry_after)
            position.retry_after = None

    async def _connect(
        self, path: str, params: list[tuple[str, str]], position: _Position, backoff: _Backoff
    ) -> AsyncIterator[StreamMessage]:
        """One connection: the messages it carries, until it ends or breaks."""
        headers = {"Accept": "text/event-stream"}
        if position.last_id is not None:
            headers["Last-Event-ID"] = str(position.last_id)
        timeout = httpx.Timeout(self._http.timeout.connect, read=self._read_timeout)
        async with aconnect_sse(
            self._http, "GET", path, params=params, headers=headers, timeout=timeout
        ) as source:
            response = source.response
            if response.status_code == 204:
                position.done = True  # a finished task the client already has in full
                return
            if response.status_code >= 500:
                await response.aread()
                position.retry_after = _retry_after(response)
                return
            if response.status_code != 200:
                await response.aread()
                _json(response)  # raises the hub's error
            async for sse in source.aiter_sse():
                if sse.retry is not None:
                    backoff.hint = sse.retry / 1000
                message = _message(sse)
                if message is None:
                    continue
                backoff.reset()
                if message.id is not None:
                    position.last_id = message.id
                if position.ends and message.terminal:
                    position.done = True
                yield message


@dataclass(slots=True)
class _Position:
    """Where a stream is: the last id yielded, and whether it is over."""

    last_id: int | None
    ends: bool
    done: bool = False
    retry_after: float | None = None


class _Backoff:
    """The server's ``retry:`` hint at first, then doubling up to ``cap``, with jitter."""

    def __init__(self, cap: float) -> None:
        self.hint = 1.0
        self._cap = cap
        self._failures = 0

    def reset(self) -> None:
        self._failures = 0

    async def sleep(self, at_least: float | None = None) -> None:
        delay = min(self._cap, self.hint * 2**self._failures)
        self._failures += 1
        delay = max(delay, at_least or 0.0) * random.uniform(0.8, 1.2)
        await asyncio.sleep(delay)


def _message(sse: ServerSentEvent) -> StreamMessage | None:
    if not sse.data:
        return None  # a bare retry hint
    data = json.loads(sse.data)
    seq = int(sse.id) if sse.id else None
    if sse.event == "state":
        return StreamMessage("state", seq, task=task_from_dict(data))
    if sse.event == "reset":
        task = data.get("task")
        return StreamMessage(
            "reset",
            seq,
            task=task_from_dict(task) if task else None,
            tasks=[task_from_dict(t) for t in data.get("tasks", ())],
            reason=data.get("reason"),
        )
    if sse.event not in ("", "message"):
        return None  # a kind this client does not know yet
    return StreamMessage("event", seq, event=event_from_dict(data))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def _json(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer; raises :class:`HubHTTPError` otherwise."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success and isinstance(data, dict):
        return data
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        raise HubHTTPError(response.status_code, str(error.get("code")), str(error.get("message")))
    raise HubHTTPError(response.status_code, "http_error", response.text[:200])
