"""The ``callback-hub`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from hub import demo, tail
from hub.config import Settings
from hub.errors import ConfigError
from hub.simulator import cli as simulator_cli

logger = logging.getLogger("hub")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every subcommand registers itself here."""
    parser = argparse.ArgumentParser(
        prog="callback-hub",
        description="Durable webhook correlation for async generation APIs.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the hub (HTTP API, webhooks, streams)")
    serve.add_argument("--host", help="bind address (HUB_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (HUB_PORT, default 8000)")
    serve.add_argument("--database-url", help="store URL (HUB_DATABASE_URL)")
    serve.add_argument("--broker-url", help="bus URL (HUB_BROKER_URL, default memory://)")
    serve.add_argument("--public-url", help="base of callback URLs (HUB_PUBLIC_URL)")
    serve.add_argument("--data-dir", help="folder for the SQLite file and kept secrets")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--log-level", help="debug, info, warning, error (HUB_LOG_LEVEL)")
    serve.set_defaults(handler=_serve)
    tail.add_parser(commands)
    demo.add_parser(commands)
    simulator_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except ConfigError as exc:
        print(f"callback-hub: {exc.message}", file=sys.stderr)
        return 2
    return status


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.logs import install_redaction

    overrides = {
        "host": args.host,
        "port": args.port,
        "database_url": args.database_url,
        "broker_url": args.broker_url,
        "public_url": args.public_url,
        "data_dir": args.data_dir,
        "log_level": args.log_level,
    }
    settings = Settings.from_env(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    install_redaction()
    if args.workers > 1:
        if settings.effective_database_url.startswith("sqlite"):
            # The SQLite store is its file's only writer: it keeps the log counters and recent
            # task state in memory, which a second process would silently contradict.
            raise ConfigError(
                "--workers > 1 needs PostgreSQL: a SQLite file takes one hub process. "
                "Set HUB_DATABASE_URL=postgresql://… (and HUB_BROKER_URL=redis://…)"
            )
        if settings.broker_url.startswith("memory"):
            raise ConfigError(
                "--workers > 1 needs a shared bus: with the memory bus events would not cross "
                "workers. Set HUB_BROKER_URL=redis://… (and HUB_DATABASE_URL=postgresql://…)"
            )
        # Workers re-read the environment, so hand them the effective settings through it.
        for name, value in overrides.items():
            if value is not None:
                os.environ["HUB_" + name.upper()] = str(value)
        uvicorn.run(
            "hub.asgi:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=args.workers,
            log_level=settings.log_level,
            timeout_graceful_shutdown=5,
        )
        return 0
    from hub.core import Hub

    hub = Hub(settings)
    logger.info(
        "callback-hub on http://%s:%d (store %s, bus %s)",
        settings.host,
        settings.port,
        settings.effective_database_url.split("@")[-1],
        settings.broker_url.split("@")[-1],
    )
    uvicorn.run(
        hub.app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0
