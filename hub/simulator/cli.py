"""``callback-hub simulate``: the provider simulator on its own, with its fault knobs as flags."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from hub.simulator.config import ConfigError, SimConfig

_SLUGS = ("linkrapi", "midjourney-api", "imagineapi", "midapi")


def add_parser(commands: Any) -> None:
    """Register ``simulate`` on the ``callback-hub`` subcommands."""
    sim = commands.add_parser(
        "simulate", help="run the simulator of LinkrAPI, midjourney-api.com, ImagineAPI, midapi.ai"
    )
    sim.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    sim.add_argument("--seed", type=int, help="seed for repeatable faults")
    sim.add_argument("--step", type=float, default=1.0, help="seconds per progress step")
    sim.add_argument("--drop", type=float, default=0.0, help="share of webhooks dropped")
    sim.add_argument("--duplicate", type=float, default=0.0, help="share sent twice")
    sim.add_argument("--reorder", type=float, default=0.0, help="share held back and sent late")
    sim.add_argument("--delay", type=float, default=0.0, help="seconds before each webhook")
    sim.add_argument("--fail", type=float, default=0.0, help="share of tasks that fail")
    sim.add_argument("--stall", type=float, default=0.0, help="share of tasks that time out")
    sim.add_argument("--rate-limit", type=int, help="requests per second per API key")
    sim.add_argument(
        "--progress-webhooks", action="store_true", help="LinkrAPI/midjourney-api: every step"
    )
    sim.add_argument(
        "--imagineapi-webhook", metavar="URL", help="ImagineAPI's account-level webhook URL"
    )
    sim.set_defaults(handler=_main)


def _main(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.simulator import Simulator, create_app

    config = SimConfig(
        seed=args.seed,
        queue_s=args.step / 2,
        step_s=args.step,
        drop_rate=args.drop,
        duplicate_rate=args.duplicate,
        reorder_rate=args.reorder,
        delay_s=args.delay,
        fail_rate=args.fail,
        timeout_rate=args.stall,
        rate_limit=args.rate_limit,
        progress_webhooks=args.progress_webhooks,
        imagineapi_webhooks={"*": args.imagineapi_webhook} if args.imagineapi_webhook else {},
    )
    try:
        config.validate()
    except ConfigError as exc:
        print(f"callback-hub simulate: {exc}")
        return 2
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    url = f"http://{args.host}:{args.port}"
    print(f"simulator on {url}; point the hub at it with:")
    for slug in _SLUGS:
        prefix = "HUB_" + slug.replace("-", "_").upper()
        key = "lkr_sim" if slug == "linkrapi" else "any-key"
        print(f"  {prefix}_URL={url} {prefix}_KEY={key}")
    print(f"knobs: GET/PATCH {url}/_sim/config")
    uvicorn.run(create_app(Simulator(config)), host=args.host, port=args.port, log_level="warning")
    return 0
