"""Logging set-up that keeps tokens out of the logs.

Callback URLs carry their token in the path and stream URLs in the query string, so access
logs would otherwise record working credentials.
"""

from __future__ import annotations

import logging
import re

_SECRETS = re.compile(
    r"(/hooks/[^/\s\"]+/(?:account/)?)[^/\s\"?]+|((?:token|key|last_event_id)=)[^&\s\"]+"
)


def redact(text: str) -> str:
    """``text`` with hook tokens, account keys and ``token=`` values replaced by ``***``."""
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class RedactTokens(logging.Filter):
    """Rewrites records so no token reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                redact(arg) if isinstance(arg, str) else arg
                for arg in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_redaction() -> None:
    """Attach :class:`RedactTokens` to the hub's and uvicorn's loggers."""
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "hub"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
