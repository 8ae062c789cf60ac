"""callback-hub: durable webhook correlation for async generation APIs."""

from __future__ import annotations

from hub.client import HubClient
from hub.config import Settings
from hub.core import Hub
from hub.errors import (
    ConfigError,
    HubError,
    MissingExtraError,
    PayloadError,
    StoreUnavailable,
    TaskNotFound,
    TokenError,
    TokenExpired,
    TokenScopeError,
    UnknownProvider,
    WaitTimeout,
)
from hub.models import (
    Action,
    Disposition,
    ErrorCategory,
    ErrorInfo,
    Event,
    EventType,
    Output,
    Source,
    Status,
    Task,
    Update,
)

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ConfigError",
    "Disposition",
    "ErrorCategory",
    "ErrorInfo",
    "Event",
    "EventType",
    "Hub",
    "HubClient",
    "HubError",
    "MissingExtraError",
    "Output",
    "PayloadError",
    "Settings",
    "Source",
    "Status",
    "StoreUnavailable",
    "Task",
    "TaskNotFound",
    "TokenError",
    "TokenExpired",
    "TokenScopeError",
    "UnknownProvider",
    "Update",
    "WaitTimeout",
    "__version__",
]
