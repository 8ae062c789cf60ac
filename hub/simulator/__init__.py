"""A simulator of the supported providers (LinkrAPI, midjourney-api.com, ImagineAPI, midapi.ai).

One ASGI app speaks all four APIs (their paths do not overlap), delivers their webhooks with
configurable faults and serves real placeholder PNGs at its result URLs, so the hub can be
tested and demonstrated end to end with no network::

    sim = Simulator(SimConfig(step_s=0.05, drop_rate=0.5))
    app = create_app(sim)      # serve it with uvicorn; point HUB_<PROVIDER>_URL at it

``callback-hub simulate`` runs it on its own.
"""

from __future__ import annotations

from hub.simulator.app import create_app
from hub.simulator.config import SimConfig
from hub.simulator.engine import Job, Outcome, Phase
from hub.simulator.sim import Simulator

__all__ = ["Job", "Outcome", "Phase", "SimConfig", "Simulator", "create_app"]
