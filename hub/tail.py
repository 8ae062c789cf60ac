"""``callback-hub tail``: print a hub's events as they happen, with a progress bar per task.

On a terminal the bars of running tasks stay at the bottom and are redrawn in place; piped
into a file or another program, every event is one plain line (with its bar). The stream
resumes on its own across reconnects (:class:`hub.client.HubClient`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from typing import TextIO

from hub.client import HubClient, HubHTTPError, StreamMessage
from hub.config import Settings
from hub.models import Event, Task

BAR_WIDTH = 24


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``tail`` on the ``callback-hub`` command line."""
    tail = commands.add_parser("tail", help="print events live, with a progress bar per task")
    tail.add_argument("--url", help="the hub (HUB_PUBLIC_URL, else http://HUB_HOST:HUB_PORT)")
    tail.add_argument("--api-key", help="HUB_API_KEY (default: that variable, or the kept one)")
    tail.add_argument("--task", action="append", default=[], help="follow this task (repeat)")
    tail.add_argument("--token", help="a subscriber token: follow --task without the API key")
    tail.add_argument("--provider", action="append", default=[], help="only this provider")
    tail.add_argument("--type", action="append", default=[], help="only this event type")
    tail.add_argument("--status", action="append", default=[], help="only this status")
    tail.add_argument("--channel", help="only tasks whose metadata channel is this")
    tail.add_argument("--last-event-id", type=int, help="start after this event id (resume)")
    tail.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The ``tail`` command: follow until interrupted, or until the given tasks finish."""
    settings = Settings.from_env()
    url = args.url or settings.public_url or f"http://{settings.host}:{settings.port}"
    api_key = args.api_key or settings.api_key or _kept_api_key(settings)
    try:
        return asyncio.run(
            tail(
                url,
                api_key=api_key,
                tasks=args.task,
                token=args.token,
                providers=args.provider,
                types=args.type,
                statuses=args.status,
                channel=args.channel,
                last_event_id=args.last_event_id,
            )
        )
    except KeyboardInterrupt:
        return 130


async def tail(
    url: str,
    *,
    api_key: str | None = None,
    tasks: list[str] | None = None,
    token: str | None = None,
    providers: list[str] | None = None,
    types: list[str] | None = None,
    statuses: list[str] | None = None,
    channel: str | None = None,
    last_event_id: int | None = None,
    out: TextIO | None = None,
) -> int:
    """Print events from the hub at ``url``; returns the exit status.

    With one task, follows its stream until it finishes; with several, until all have.
    """
    out = out or sys.stdout
    board = Board(out, live=out.isatty())
    tasks = tasks or []
    waiting = set(tasks)
    async with HubClient(url, api_key=api_key) as client:
        if len(tasks) == 1:
            messages = client.stream(task_id=tasks[0], token=token, last_event_id=last_event_id)
        else:
            messages = client.stream(
                task_ids=tasks,
                providers=providers or (),
                types=types or (),
                statuses=statuses or (),
                channel=channel,
                last_event_id=last_event_id,
            )
        try:
            async for message in messages:
                board.show(message)
                finished = _finished(message)
                if finished is not None and len(tasks) > 1:
                    waiting.discard(finished)
                    if not waiting:
                        break
        except HubHTTPError as exc:
            print(f"callback-hub tail: {exc.message}", file=sys.stderr)
            return 1
        finally:
            board.clear()
    return 0


class Board:
    """Event lines, and a bar for each running task (redrawn in place when ``live``)."""

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self._out = out
        self._live = live
        self._progress: dict[str, tuple[str, int]] = {}
        self._drawn = 0

    def show(self, message: StreamMessage) -> None:
        """Print one message and update the bars."""
        self._erase()
        if message.event is not None:
            self._event(message.event)
        for task in ([message.task] if message.task else []) + message.tasks:
            self._task(task, message.kind)
        self._draw()
        self._out.flush()

    def clear(self) -> None:
        """Remove the bars (at exit)."""
        self._erase()
        self._out.flush()

    def _event(self, event: Event) -> None:
        task_id = event.task_id or "-"
        status = event.status.value if event.status else "-"
        line = f"{_clock(event.received_at)}  #{event.seq}  {task_id}  {event.type}  {status}"
        if event.status is not None and event.status.terminal:
            self._progress.pop(task_id, None)
            if event.error is not None:
                line += f"  {event.error.category.value}: {event.error.message}"
            if event.outputs:
                line += f"  {len(event.outputs)} output(s): {event.outputs[0].url}"
        else:
            known = self._progress.get(task_id, (status, 0))[1]
            progress = max(known, event.progress or 0)
            self._progress[task_id] = (status, progress)
            if not self._live:
                line += "  " + bar(progress)
        self._out.write(line + "\n")

    def _task(self, task: Task, kind: str) -> None:
        line = f"{_clock(task.updated_at)}  {kind}  {task.id}  {task.provider}  {task.status}"
        if task.terminal:
            self._progress.pop(task.id, None)
        else:
            self._progress[task.id] = (task.status.value, task.progress or 0)
            if not self._live:
                line += "  " + bar(task.progress or 0)
        self._out.write(line + "\n")

    def _draw(self) -> None:
        if not self._live:
            return
        for task_id, (status, progress) in self._progress.items():
            self._out.write(f"  {task_id}  {bar(progress)}  {status}\n")
        self._drawn = len(self._progress)

    def _erase(self) -> None:
        if self._live and self._drawn:
            # Up to the first bar line, then clear to the end of the screen.
            self._out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0


def bar(progress: int) -> str:
    """``[#########---------------]  38%``"""
    filled = round(BAR_WIDTH * max(0, min(progress, 100)) / 100)
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {progress:3d}%"


def _finished(message: StreamMessage) -> str | None:
    if message.event is not None and message.terminal:
        return message.event.task_id
    if message.task is not None and message.task.terminal:
        return message.task.id
    return None


def _clock(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def _kept_api_key(settings: Settings) -> str | None:
    """The API key ``serve`` generated and kept in the data folder, when it is there."""
    path = settings.data_dir / "api_key"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
