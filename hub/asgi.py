"""``hub.asgi:create_app`` builds the app from the environment (for ``uvicorn --factory``)."""

from __future__ import annotations

import logging
import multiprocessing

from starlette.types import ASGIApp

from hub.config import Settings
from hub.core import Hub
from hub.logs import install_redaction

logger = logging.getLogger("hub")


def create_app() -> ASGIApp:
    """A hub configured from ``HUB_*`` variables, as an ASGI app with its lifespan."""
    install_redaction()
    hub = Hub(Settings.from_env())
    warn_if_worker_on_memory_bus(hub)
    return hub.app


def warn_if_worker_on_memory_bus(hub: Hub) -> None:
    """Warn loudly when this looks like one of several uvicorn/gunicorn workers on the memory bus.

    ``callback-hub serve --workers N`` refuses that outright; a bare ``uvicorn --workers N
    --factory hub.asgi:create_app`` cannot be stopped, only detected: its workers are child
    processes. Events committed in one worker would reach the others' waiters and streams only
    through the periodic store check, and SQLite's counters are per process.
    """
    if hub.bus.crosses_processes or multiprocessing.parent_process() is None:
        return
    logger.error(
        "callback-hub runs in a worker process with the in-memory bus (HUB_BROKER_URL=memory://). "
        "If there are several workers, events will NOT cross them and SQLite writes will "
        "collide: run one worker, or set HUB_BROKER_URL=redis://… and "
        "HUB_DATABASE_URL=postgresql://…"
    )
