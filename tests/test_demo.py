"""``callback-hub demo`` and ``callback-hub simulate``: what a new user runs first."""

from __future__ import annotations

import io
import subprocess
import sys

from hub.cli import build_parser
from hub.demo import run_demo
from tests.support import ROOT


def test_demo_command_runs_to_completion() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hub", "demo", "--step", "0.05", "--drop", "0.5", "--plain"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: 5 succeeded, 1 refused" in done.stdout
    assert "moderation" in done.stdout and "via poll" in done.stdout


async def test_demo_redraws_in_place_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    assert await run_demo(step_s=0.03, drop_rate=0.0, timeout=30, out=out) == 0
    assert "\x1b[" in out.getvalue()  # cursor movement: the board is redrawn, not appended


def test_simulate_and_demo_parse_their_flags() -> None:
    args = build_parser().parse_args(["simulate", "--port", "9100", "--drop", "0.5", "--seed", "3"])
    assert (args.port, args.drop, args.seed) == (9100, 0.5, 3)
    assert build_parser().parse_args(["demo", "--step", "0.1"]).step == 0.1
    bad = subprocess.run(
        [sys.executable, "-m", "hub", "simulate", "--drop", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "drop_rate" in bad.stdout
