"""What a provider adapter is, and the small parsing helpers adapters share.

An adapter turns one provider's webhook body (already a JSON object) into an
:class:`~hub.models.Update`. It raises :class:`~hub.errors.PayloadError` when the body lacks
what the provider's documentation says is always there (a 4xx for the sender); a body that has
the shape but a status the adapter does not know becomes an update with ``status=None``, which
the hub stores as ``unrecognised`` instead of guessing.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from hub.errors import PayloadError
from hub.models import Action, ErrorCategory, ErrorInfo, Output, Update


class Adapter(ABC):
    """Normalizes one provider's webhook format."""

    slug: ClassVar[str]
    #: The provider posts every task's webhooks to one URL set per account (ImagineAPI).
    account_level: ClassVar[bool] = False

    @abstractmethod
    def parse_webhook(self, body: dict[str, Any]) -> Update:
        """Normalize one webhook body; raise :class:`PayloadError` if it cannot be one."""


_MODERATION = re.compile(
    r"content.?policy|moderat|banned|prohibited|forbidden (?:word|term)|nsfw|violat|sensitive",
    re.IGNORECASE,
)
_QUOTA = re.compile(r"quota|credit|subscription|insufficient|balance", re.IGNORECASE)
_TIMEOUT = re.compile(r"time.?out|timed out", re.IGNORECASE)
_RATE = re.compile(r"rate.?limit|too many requests", re.IGNORECASE)


def classify_error(message: str, code: str | None = None) -> ErrorInfo:
    """Map a provider's failure text to a category; moderation wins over everything else."""
    if _MODERATION.search(message):
        category = ErrorCategory.MODERATION
    elif _QUOTA.search(message):
        category = ErrorCategory.QUOTA
    elif _RATE.search(message):
        category = ErrorCategory.RATE_LIMITED
    elif _TIMEOUT.search(message):
        category = ErrorCategory.TIMEOUT
    else:
        category = ErrorCategory.UNKNOWN
    retryable = category in (ErrorCategory.RATE_LIMITED, ErrorCategory.TIMEOUT)
    return ErrorInfo(category=category, message=message[:2000], code=code, retryable=retryable)


def require_mapping(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``body[key]`` when it is a JSON object; otherwise a :class:`PayloadError`."""
    value = body.get(key)
    if not isinstance(value, dict):
        raise PayloadError(f"field {key!r} must be an object")
    return value


def text(value: Any, limit: int = 2000) -> str | None:
    """A string field, or None for anything that is not a non-empty string or number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value:
        return value[:limit]
    return None


def progress(value: Any) -> int | None:
    """A 0-100 progress from a number or a string such as ``"45"`` or ``"45%"``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # clamped as an int: float() of a huge one overflows
        return max(0, min(100, value))
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number):  # NaN, or an infinity int() cannot take
        return None
    return max(0, min(100, int(number)))


def url_list(value: Any, *, key: str | None = None) -> list[str]:
    """URLs from a list of strings, or of objects holding the URL under ``key``."""
    if not isinstance(value, list):
        return []
    urls: list[str] = []
    for item in value[:64]:
        if key is not None and isinstance(item, dict):
            item = item.get(key)
        if isinstance(item, str) and item:
            urls.append(item[:4096])
    return urls


def indexed(urls: list[str], role: str) -> tuple[Output, ...]:
    """Outputs numbered from 0 in the order the provider lists them."""
    return tuple(Output(url=u, role=role, index=i) for i, u in enumerate(urls))


_BUTTON = re.compile(r"^(?:upsample|upscale|u)(\d)$|^(?:variation|vary|v)(\d)$", re.IGNORECASE)


def action_from_label(label: str, provider_ref: str | None = None) -> Action:
    """An action from a Midjourney button label or action name (``U1``, ``variation3``...)."""
    cleaned = label.strip()
    match = _BUTTON.match(cleaned)
    if match:
        if match.group(1):
            return Action("upscale", int(match.group(1)), provider_ref or cleaned)
        return Action("variation", int(match.group(2)), provider_ref or cleaned)
    if cleaned in ("🔄", "reroll") or "reroll" in (provider_ref or "").lower():
        return Action("reroll", None, provider_ref or cleaned)
    return Action("other", None, provider_ref or cleaned)


def grid_actions(provider_refs: dict[str, str] | None = None) -> tuple[Action, ...]:
    """The upscale 1-4, variation 1-4 and reroll actions a finished Midjourney grid offers."""
    refs = provider_refs or {}
    actions = [Action("upscale", i, refs.get(f"upscale{i}")) for i in range(1, 5)]
    actions += [Action("variation", i, refs.get(f"variation{i}")) for i in range(1, 5)]
    actions.append(Action("reroll", None, refs.get("reroll")))
    return tuple(actions)
