"""``hub.asgi:create_app`` builds the app from the environment (for ``uvicorn --factory``)."""

from __future__ import annotations

from starlette.types import ASGIApp

from hub.config import Settings
from hub.core import Hub
from hub.logs import install_redaction


def create_app() -> ASGIApp:
    """A hub configured from ``HUB_*`` variables, as an ASGI app with its lifespan."""
    install_redaction()
    return Hub(Settings.from_env()).app
