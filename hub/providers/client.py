"""Provider API clients: what the hub asks a provider (submit, status, actions) over httpx.

Each supported provider has a client module (``<slug>_client.py``) that knows its paths, auth and
envelope; webhook parsing stays in the adapters, and a client's status answer goes through the
same parser, so a poll and a webhook normalize alike. Failures are classified once, here, into
the errors the retry policy (:mod:`hub.providers.retry`) acts on::

    ProviderError                    the provider call failed
    ├── ProviderRejected             the request itself was refused (content policy, bad input,
    │                                no quota): never retried; ``category`` says why
    ├── ProviderAuthError            401/403: the configured key is wrong or the account suspended
    ├── ProviderRateLimited          429 (``retry_after`` seconds when the provider said)
    ├── ProviderUnavailable          5xx, a network error or an answer that is not the API's
    └── ProviderNotFound             the provider does not know the task id
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import httpx

from hub.errors import HubError
from hub.models import ErrorCategory, Update
from hub.providers.base import classify_error

if TYPE_CHECKING:
    from hub.models import Task

#: Follow-ups a client may offer (:meth:`ProviderClient.action`).
ACTION_KINDS = ("upscale", "variation", "reroll")


class ProviderError(HubError):
    """A call to a provider's API failed; ``task`` is the hub task it was for, if any."""

    status_code = 502
    code = "provider_error"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        http_status: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.provider_message = message
        self.http_status = http_status
        self.body = body
        self.task: Task | None = None


class ProviderRejected(ProviderError):
    """The provider refused this request; sending it again would not help."""

    status_code = 422
    code = "provider_rejected"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        category: ErrorCategory,
        http_status: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(provider, message, http_status=http_status, body=body)
        self.category = category


class ProviderAuthError(ProviderError):
    """The provider refused the configured credentials (401) or the account (403)."""

    code = "provider_auth"


class ProviderRateLimited(ProviderError):
    """The provider asked us to slow down; ``retry_after`` is in seconds when it said."""

    status_code = 503
    code = "provider_rate_limited"

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(provider, message, http_status=http_status, body=body)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """A 5xx, a network failure, or an answer that does not follow the provider's API."""

    code = "provider_unavailable"


class ProviderNotFound(ProviderError):
    """The provider does not know the task id."""

    code = "provider_task_not_found"


class ActionUnsupported(HubError):
    """The provider has no such follow-up (or the hub does not know how to ask for it)."""

    status_code = 400
    code = "action_unsupported"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A provider took a job: its id for it, and the raw answer."""

    provider_task_id: str
    raw: Any = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A status answer, normalized by the provider's adapter, and the raw body."""

    update: Update
    raw: Any = None


class ProviderClient(ABC):
    """One provider account: base URL and key, over a shared :class:`httpx.AsyncClient`."""

    slug: ClassVar[str]
    #: The submit field that carries the callback URL; None for account-level webhooks.
    callback_field: ClassVar[str | None]
    #: Jobs one account may run at once (None: no documented limit).
    concurrency: ClassVar[int | None] = None
    #: The follow-ups :meth:`action` supports.
    actions: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    @abstractmethod
    async def submit(
        self, prompt: str, *, callback_url: str | None, ref: str, options: Mapping[str, Any]
    ) -> Accepted:
        """Start a generation; ``ref`` is the hub task id (echoed where the API allows)."""

    @abstractmethod
    async def fetch(self, provider_task_id: str) -> Fetched:
        """The task's current state from the provider's status endpoint."""

    async def action(
        self,
        provider_task_id: str,
        kind: str,
        index: int | None,
        *,
        callback_url: str | None,
        ref: str,
    ) -> Accepted:
        """Start a follow-up (``upscale``, ``variation``, ``reroll``) on a finished task."""
        raise ActionUnsupported(f"{self.slug} offers no {kind} action through its API")

    # -- helpers for subclasses -----------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """Auth headers; Bearer unless a provider says otherwise."""
        return {"Authorization": f"Bearer {self.api_key}"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One HTTP call; network failures become :class:`ProviderUnavailable`."""
        try:
            return await self.http.request(
                method, self.base_url + path, json=json, params=params, headers=self.headers()
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(self.slug, f"{type(exc).__name__} calling {path}") from exc

    def body(self, response: httpx.Response) -> Any:
        """The JSON body; an unreadable one is the provider misbehaving (retryable)."""
        try:
            return response.json()
        except ValueError:
            if response.status_code >= 400:
                return None
            raise ProviderUnavailable(
                self.slug, f"answered {response.status_code} without JSON"
            ) from None

    def fail(self, status: int, message: str, *, body: Any = None, headers: Any = None) -> NoReturn:
        """Raise the :class:`ProviderError` a failed answer with ``status`` stands for."""
        raise classify_failure(self.slug, status, message, body=body, headers=headers)


def classify_failure(
    provider: str,
    status: int,
    message: str,
    *,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> ProviderError:
    """The error for a failed answer, by HTTP status (or an envelope code used like one)."""
    if status == 429:
        after = retry_after((headers or {}).get("retry-after"))
        return ProviderRateLimited(
            provider, message, retry_after=after, http_status=status, body=body
        )
    if status in (401, 403):
        return ProviderAuthError(provider, message, http_status=status, body=body)
    if status == 404:
        return ProviderNotFound(provider, message, http_status=status, body=body)
    if status == 402:
        return ProviderRejected(
            provider, message, category=ErrorCategory.QUOTA, http_status=status, body=body
        )
    if status >= 500 or status < 400:
        return ProviderUnavailable(provider, message, http_status=status, body=body)
    category = classify_error(message).category
    if category is not ErrorCategory.MODERATION:
        category = ErrorCategory.INVALID_REQUEST
    return ProviderRejected(provider, message, category=category, http_status=status, body=body)


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def message_of(body: Any, *keys: str, default: str) -> str:
    """The first non-empty string under ``keys`` of a JSON object body."""
    if isinstance(body, dict):
        for key in keys:
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:2000]
    return default
