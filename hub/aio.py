"""Small asyncio helpers shared by the hub's background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: asyncio.Task[Any] | Iterable[asyncio.Task[Any]] | None) -> None:
    """Cancel background tasks and wait until each has finished unwinding.

    Waiting matters: a task still running its ``finally`` after its owner closed would touch
    a connection that is already gone.
    """
    if tasks is None:
        return
    pending = [tasks] if isinstance(tasks, asyncio.Task) else list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
