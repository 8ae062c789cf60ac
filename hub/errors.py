"""Exceptions raised by the hub.

::

    HubError
    ├── ConfigError                 a setting is missing or malformed
    ├── MissingExtraError           a backend's optional dependency is not installed
    ├── TaskNotFound                no task has that id
    ├── UnknownProvider             no adapter has that slug
    ├── TokenError                  a callback, subscriber or account token is refused
    │   ├── TokenExpired
    │   └── TokenScopeError         valid, but for another task, provider or purpose
    ├── PayloadError                a request body the hub cannot accept
    ├── StoreUnavailable            the database did not take the write; nothing was acknowledged
    └── WaitTimeout (TimeoutError)  ``wait`` ran out of time before the task finished

Each HTTP-facing error carries the status code and machine-readable ``code`` the API answers
with, so routes never invent their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.models import Task


class HubError(Exception):
    """Root of every error the hub raises."""

    status_code = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigError(HubError):
    """A setting is missing or malformed."""

    code = "config"


class MissingExtraError(ConfigError):
    """A backend needs an optional dependency that is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'callback-hub[{extra}]'")
        self.package = package
        self.extra = extra


class TaskNotFound(HubError):
    """No task has the given id."""

    status_code = 404
    code = "task_not_found"

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task {task_id!r}")
        self.task_id = task_id


class UnknownProvider(HubError):
    """No adapter is registered under the given slug."""

    status_code = 404
    code = "unknown_provider"

    def __init__(self, provider: str) -> None:
        super().__init__(f"unknown provider {provider!r}")
        self.provider = provider


class TokenError(HubError):
    """A token is malformed, forged or altered."""

    status_code = 401
    code = "invalid_token"


class TokenExpired(TokenError):
    """A token was genuine but is past its age limit."""

    code = "token_expired"


class TokenScopeError(TokenError):
    """A genuine token used for another task, provider or purpose."""

    status_code = 403
    code = "token_scope"


class PayloadError(HubError):
    """A request body the hub cannot accept."""

    def __init__(self, message: str, *, status_code: int = 422, code: str = "invalid_payload"):
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class StoreUnavailable(HubError):
    """The store refused or failed a write; nothing in it was acknowledged."""

    status_code = 503
    code = "store_unavailable"


class WaitTimeout(HubError, TimeoutError):
    """``Hub.wait`` ran out of time; ``task`` is the last state seen."""

    status_code = 408
    code = "wait_timeout"

    def __init__(self, task: Task) -> None:
        super().__init__(f"task {task.id} still {task.status.value} when the wait ran out")
        self.task = task
