"""Logging set-up that keeps tokens out of the logs.

Callback URLs carry their token in the path and stream URLs in the query string, so access
logs would otherwise record working credentials; database and broker URLs may carry a
password. :func:`install_redaction` rewrites every log record as it is made, whichever logger
makes it (a filter on ``hub`` would miss ``hub.hooks``: Python runs a logger's filters only
for its own records), and the text of any traceback with it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_SECRETS = re.compile(
    r"(/hooks/[^/\s\"]+/(?:account/)?)[^/\s\"?]+"
    r"|((?:token|key|last_event_id)=)[^&\s\"]+"
    r"|(://[^:/@\s\"]*:)[^@/\s\"]+(?=@)"
)
_FORMATTER = logging.Formatter()
_installed = False


def redact(text: str) -> str:
    """``text`` with hook tokens, account keys, ``token=`` values and URL passwords as ``***``."""
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "***", text)


def _redact_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return redact(arg)
    if arg is None or isinstance(arg, int | float):
        return arg  # keeps %d and %.2f working
    text = str(arg)
    cleaned = redact(text)
    return arg if cleaned == text else cleaned


class RedactTokens(logging.Filter):
    """Rewrites records so no token reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


def _scrub(record: logging.LogRecord) -> None:
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(arg) for arg in record.args)
    elif record.args:  # a single mapping argument
        record.args = {k: _redact_arg(v) for k, v in record.args.items()}
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        # Formatters reuse exc_text when it is set, so the traceback is redacted once here.
        record.exc_text = redact(_FORMATTER.formatException(record.exc_info))


def install_redaction() -> None:
    """Redact every log record this process makes, from any logger (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _scrub(record)
        return record

    logging.setLogRecordFactory(redacting_factory)
