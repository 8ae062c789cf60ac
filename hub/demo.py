"""``callback-hub demo``: the hub and the simulator together, a few prompts, live in the terminal.

Everything runs in one process on loopback with a throw-away data folder, so it works on a
fresh machine with no network. The simulator drops a share of webhooks on purpose: those
tasks still finish, by polling, which the board shows in the ``via`` column.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from hub.config import Settings
from hub.core import Hub
from hub.models import Event, Status, Task
from hub.simulator import SimConfig, Simulator, create_app

PROMPTS = (
    ("linkrapi", "a lighthouse on a cliff at dawn, cinematic --ar 3:2"),
    ("midjourney-api", "a red fox in fresh snow, soft light"),
    ("imagineapi", "a paper boat on a rain puddle, macro"),
    ("midapi", "an orchard in spring, watercolour"),
    ("linkrapi", "a gore-splattered poster"),  # refused by LinkrAPI's content policy
)
KEYS = {
    "linkrapi": "lkr_demo",
    "midjourney-api": "mjapi-demo",
    "imagineapi": "imagine-demo",
    "midapi": "midapi-demo",
}


def add_parser(commands: Any) -> None:
    """Register ``demo`` on the ``callback-hub`` subcommands."""
    demo = commands.add_parser(
        "demo", help="run the hub with the provider simulator and watch a few prompts finish"
    )
    demo.add_argument("--step", type=float, default=0.4, help="seconds per progress step")
    demo.add_argument(
        "--drop", type=float, default=0.3, help="share of webhooks the simulator loses (0-1)"
    )
    demo.add_argument("--timeout", type=float, default=60.0, help="give up after this long")
    demo.add_argument("--plain", action="store_true", help="one line per event, no redrawing")
    demo.set_defaults(handler=_main)


def _main(args: argparse.Namespace) -> int:
    return asyncio.run(
        run_demo(step_s=args.step, drop_rate=args.drop, timeout=args.timeout, plain=args.plain)
    )


async def run_demo(
    *,
    step_s: float = 0.4,
    drop_rate: float = 0.3,
    timeout: float = 60.0,
    plain: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run the demo; 0 when every prompt ended as expected."""
    out = out or sys.stdout
    sim = Simulator(SimConfig(seed=4, queue_s=step_s, step_s=step_s, drop_rate=drop_rate))
    with tempfile.TemporaryDirectory(prefix="callback-hub-demo-") as data_dir:
        async with _servers(sim, Path(data_dir), step_s) as hub:
            board = Board(out, live=not plain and out.isatty())
            hub.dispatcher.add_listener(board.on_event)
            try:
                async with asyncio.timeout(timeout):
                    return await _play(hub, board)
            except TimeoutError:
                board.note(f"gave up after {timeout:g}s")
                return 1
            finally:
                hub.dispatcher.remove_listener(board.on_event)


async def _play(hub: Hub, board: Board) -> int:
    board.note("submitting through the hub to the simulated providers…")
    tasks = []
    for provider, prompt in PROMPTS:
        task = await hub.submit(provider, prompt=prompt)
        board.track(task)
        tasks.append(task)
    first = await hub.wait(tasks[0].id, timeout=3600)
    if first.status is Status.SUCCEEDED:
        board.note("upscaling image 2 of the first grid (a child task)…")
        child = await hub.action(first.id, "upscale", index=2)
        board.track(child)
        tasks.append(child)
    finals = [await hub.wait(t.id, timeout=3600) for t in tasks]
    board.render(force=True)
    polled = sum(1 for t in finals if board.via.get(t.id) == "poll")
    board.note(
        f"done: {sum(t.status is Status.SUCCEEDED for t in finals)} succeeded, "
        f"{sum(t.status is Status.FAILED for t in finals)} refused, {polled} finished by polling "
        "after their webhook was lost"
    )
    expected = [Status.SUCCEEDED] * 4 + [Status.FAILED] + [Status.SUCCEEDED] * (len(finals) - 5)
    return 0 if [t.status for t in finals] == expected else 1


@contextlib.asynccontextmanager
async def _servers(sim: Simulator, data_dir: Path, step_s: float) -> AsyncIterator[Hub]:
    sim_port, hub_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    providers: dict[str, Any] = {}
    for slug, key in KEYS.items():
        prefix = slug.replace("-", "_")
        providers[f"{prefix}_url"] = sim_url
        providers[f"{prefix}_key"] = key
    settings = Settings(
        secret=(secrets.token_urlsafe(32),),
        api_key=secrets.token_urlsafe(16),
        data_dir=data_dir,
        port=hub_port,
        public_url=f"http://127.0.0.1:{hub_port}",
        sqlite_synchronous="NORMAL",
        # Poll soon after a webhook is overdue, so lost ones are recovered while you watch.
        poll_after_s=max(1.0, step_s * 3),
        poll_max_interval_s=max(2.0, step_s * 6),
        poll_tick_s=0.2,
        **providers,
    )
    hub = Hub(settings)
    async with serve_app(create_app(sim), sim_port), serve_app(hub.app, hub_port):
        sim.config.imagineapi_webhooks["*"] = hub.account_hook_url("imagineapi")
        yield hub


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_app(app: Any, port: int, host: str = "127.0.0.1") -> AsyncIterator[None]:
    """Run ``app`` under uvicorn in this event loop until the block ends."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", loop="none"
    )
    server = uvicorn.Server(config)
    runner = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(15):
            while not server.started:
                if runner.done():
                    raise RuntimeError(f"could not listen on {host}:{port}")
                await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await runner


class Board:
    """The tasks and their latest state, redrawn in place on a terminal."""

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out = out
        self.live = live
        self.tasks: dict[str, Task] = {}
        self.via: dict[str, str] = {}
        self._lines = 0

    def track(self, task: Task) -> None:
        """Show ``task`` on the board."""
        self.tasks[task.id] = task
        self.via.setdefault(task.id, "submit")
        self.render()

    def on_event(self, event: Event) -> None:
        """Dispatcher listener: update the row of the event's task."""
        task = self.tasks.get(event.task_id or "")
        if task is None or event.status is None:
            return
        task.status = event.status
        task.progress = event.progress if event.progress is not None else task.progress
        if event.status is Status.SUCCEEDED:
            task.progress = 100
        task.error = event.error or task.error
        self.via[task.id] = event.source.value
        if self.live:
            self.render()
        else:
            self.out.write(_row(task, self.via[task.id]) + "\n")
            self.out.flush()

    def note(self, text: str) -> None:
        """A line below the board."""
        self.out.write(text + "\n")
        self.out.flush()
        self._lines = 0

    def render(self, *, force: bool = False) -> None:
        """Redraw the board (on a terminal), or print it once when ``force``d."""
        if not (self.live or force):
            return
        if self.live and self._lines:
            self.out.write(f"\x1b[{self._lines}F\x1b[J")  # back to the board's first line
        rows = [_row(t, self.via.get(t.id, "")) for t in self.tasks.values()]
        self.out.write("\n".join(rows) + "\n")
        self.out.flush()
        self._lines = len(rows) if self.live else 0


def _row(task: Task, via: str) -> str:
    label = task.metadata.get("prompt", "")
    if task.parent_id:
        label = f"↳ {task.metadata.get('action')} {task.metadata.get('index')}: {label}"
    filled = (task.progress or 0) // 10
    bar = "█" * filled + "·" * (10 - filled)
    detail = f"  {task.error.category.value}: {task.error.message[:40]}" if task.error else ""
    return f"{task.provider:<15} {label[:38]:<38} {bar} {task.status.value:<9} via {via:<7}{detail}"
