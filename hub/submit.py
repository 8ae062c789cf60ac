"""Submitting through the hub: register, hand the provider its callback URL, bind its task id.

``Hub.submit`` and ``Hub.action`` delegate here. The order matters: the task is registered
(and committed) before the provider hears of it, so a webhook that beats the submit answer
already has a task to land on; the provider's id is bound when the answer comes back (or, if
a webhook came first, it was already learned from it).

Outcomes:

* the provider took the job → the bound task (queued);
* it refused the request (content policy, bad input, no quota) → the task is recorded
  ``failed`` with the provider's message and category (``moderation`` for a content policy)
  and returned, exactly as if the refusal had come by webhook; it is not retried;
* credentials refused (401/403), or still rate limited or unavailable after the retries →
  the task is recorded ``failed`` and the :class:`~hub.providers.client.ProviderError` is
  raised with ``.task`` set.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hub.errors import HubError, PayloadError
from hub.models import ErrorCategory, ErrorInfo, Source, Status, Task, Update
from hub.providers.client import (
    ACTION_KINDS,
    Accepted,
    ActionUnsupported,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
)
from hub.providers.clients import CLIENTS, ProviderClients
from hub.providers.limits import AccountLimiter, parse_limits
from hub.providers.retry import RetryPolicy, with_retries

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hub.core import Hub


class ActionUnavailable(HubError):
    """The parent task cannot take that action yet (not finished, or not bound)."""

    status_code = 409
    code = "action_unavailable"


class ProviderBusy(ProviderError):
    """No slot of the provider account freed up before the task's deadline."""

    status_code = 503
    code = "provider_busy"


class Submitter:
    """Submits prompts and actions for a :class:`~hub.core.Hub`."""

    def __init__(self, hub: Hub, clients: ProviderClients) -> None:
        settings = hub.settings
        self.hub = hub
        self.clients = clients
        self.policy = RetryPolicy(
            attempts=settings.submit_attempts,
            base_s=settings.submit_backoff_s,
            max_s=settings.submit_backoff_max_s,
        )
        capacities: dict[str, int | None] = {slug: cls.concurrency for slug, cls in CLIENTS.items()}
        capacities.update(parse_limits(settings.provider_concurrency))
        self.limiter = AccountLimiter(capacities)
        hub.dispatcher.add_listener(self.limiter.on_event)

    async def submit(
        self,
        provider: str,
        *,
        prompt: str,
        options: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        deadline_s: float | None = None,
        base_url: str | None = None,
    ) -> Task:
        """Register a task and start it at ``provider``; see the module docstring."""
        client = self.clients.require(provider)
        if not isinstance(prompt, str) or not prompt.strip():
            raise PayloadError("'prompt' must be a non-empty string")
        task = await self._register(provider, metadata, deadline_s, prompt=prompt)
        callback = self._callback(task, client.callback_field, base_url)
        options = dict(options or {})
        return await self._start(
            task,
            lambda: client.submit(prompt, callback_url=callback, ref=task.id, options=options),
        )

    async def action(
        self,
        task_id: str,
        kind: str,
        *,
        index: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        deadline_s: float | None = None,
        base_url: str | None = None,
    ) -> Task:
        """Start a follow-up on a finished task as a child task with its own callback URL."""
        parent = await self.hub.get(task_id)
        client = self.clients.require(parent.provider)
        if kind not in ACTION_KINDS:
            raise PayloadError(f"action must be one of {', '.join(ACTION_KINDS)}")
        if kind not in client.actions:
            raise ActionUnsupported(f"{parent.provider} offers no {kind} action through its API")
        if kind == "reroll":
            index = None
        elif isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= 4:
            raise PayloadError(f"{kind} needs an image index from 1 to 4")
        if parent.status is not Status.SUCCEEDED or not parent.external_id:
            raise ActionUnavailable(f"task {parent.id} is {parent.status.value}, not succeeded")
        external = parent.external_id
        extra = {"action": kind, "index": index}
        if "prompt" in parent.metadata:
            extra["prompt"] = parent.metadata["prompt"]
        child = await self._register(
            parent.provider, {**extra, **(metadata or {})}, deadline_s, parent_id=parent.id
        )
        callback = self._callback(child, client.callback_field, base_url)
        return await self._start(
            child,
            lambda: client.action(external, kind, index, callback_url=callback, ref=child.id),
        )

    # -- internals -----------------------------------------------------------------------

    async def _register(
        self,
        provider: str,
        metadata: Mapping[str, Any] | None,
        deadline_s: float | None,
        *,
        prompt: str | None = None,
        parent_id: str | None = None,
    ) -> Task:
        data = dict(metadata or {})
        if prompt is not None:
            data.setdefault("prompt", prompt)
        deadline = deadline_s if deadline_s is not None else self.hub.settings.task_deadline_s
        return await self.hub.register(
            provider, metadata=data, deadline_s=deadline or None, parent_id=parent_id
        )

    def _callback(self, task: Task, field: str | None, base_url: str | None) -> str | None:
        # Account-level providers (ImagineAPI) take no URL per job: the echoed ref correlates.
        return self.hub.callback_url(task, base_url=base_url) if field else None

    async def _start(self, task: Task, call: Callable[[], Awaitable[Accepted]]) -> Task:
        wait = (task.deadline_at - time.time()) if task.deadline_at else 3600.0
        try:
            await self.limiter.acquire(task.provider, task.id, timeout=max(wait, 0.0))
        except TimeoutError:
            busy = ProviderBusy(task.provider, "no free job slot before the task's deadline")
            raise await self._failed(task, busy) from None
        try:
            accepted = await with_retries(call, self.policy, what=f"{task.provider} submit")
        except ProviderRejected as exc:
            self.limiter.release(task.id)
            failed = await self._record_failure(task, exc)
            return failed
        except ProviderError as exc:
            self.limiter.release(task.id)
            raise await self._failed(task, exc) from exc
        except BaseException:
            self.limiter.release(task.id)
            raise
        return await self.hub.bind(task.id, accepted.provider_task_id)

    async def _failed(self, task: Task, exc: ProviderError) -> ProviderError:
        exc.task = await self._record_failure(task, exc)
        exc.message = f"{exc.message} (task {task.id} is failed)"
        exc.args = (exc.message,)
        return exc

    async def _record_failure(self, task: Task, exc: ProviderError) -> Task:
        if isinstance(exc, ProviderRejected):
            category = exc.category
        elif isinstance(exc, ProviderRateLimited):
            category = ErrorCategory.RATE_LIMITED
        elif isinstance(exc, ProviderAuthError):
            category = ErrorCategory.INVALID_REQUEST
        else:
            category = ErrorCategory.UPSTREAM
        retryable = category in (ErrorCategory.RATE_LIMITED, ErrorCategory.UPSTREAM)
        code = str(exc.http_status) if exc.http_status is not None else exc.code
        update = Update(
            status=Status.FAILED,
            provider_status=code,
            error=ErrorInfo(category, exc.provider_message, code, retryable),
        )
        raw = {"http_status": exc.http_status, "body": exc.body}
        result = await self.hub.receive(
            task.provider, update, task_id=task.id, raw=raw, source=Source.SUBMIT
        )
        return result.task or task
