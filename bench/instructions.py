"""Instructions per webhook: a CPU figure that a busy or throttled machine does not move.

    python -m bench.instructions [--webhooks 3000] [--warmup 2000] [--reports repeat|advance]

Requests/s on a shared VM moves by a third between identical runs, so a change of a few
percent in the hub's cost cannot be seen in ``bench.ingest``. This counts instead: it drives
the hub's ASGI app in-process (64 webhooks in flight, 1 KiB bodies, a real SQLite file, no
HTTP server or client) under ``valgrind --tool=callgrind`` (``apt-get install valgrind``),
twice with different numbers of webhooks, and divides the difference in instructions
executed by the difference in webhooks. Start-up, registration and warm-up cancel out.

It prints the event loop thread's instructions per webhook (the loop is what saturates first
under load) and the whole process's. Repeated runs agree to within a few percent (what still
varies is how many webhooks share a commit, which follows the fsync's time); they leave out
the HTTP server's work, which is the same for any ASGI app.

A count is not a time. Work moved to another thread still needs the GIL there, and a thread
that must win the GIL back from a busy event loop can lengthen each group commit: a change
that lowers these counts can still lose webhooks/s. Confirm a gain with ``bench.ingest``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import uvloop

CONCURRENCY = 64
TASKS = 1000


async def drive(webhooks: int, warmup: int, folder: str, reports: str = "repeat") -> None:
    """Register the tasks, post ``warmup`` webhooks, then ``webhooks`` more, through the app.

    ``reports="repeat"`` (the default, as in ``bench.ingest``) sends each task the same
    progress every time, so after its first report each one is stored as stale: the ingest
    and store path without a task update or a fan-out. ``"advance"`` raises each task's
    progress by one per report, so every report is applied, as a provider's are.
    """
    from hub import Hub, Settings

    # Only what the run needs: no HUB_* variable of the caller's may change the count.
    # The poller stays out of it too: under valgrind a run lasts longer than poll_after_s, and
    # a sweep of the due tasks landing in one run but not the other would count as ingest.
    settings = Settings.from_env(
        {},
        secret=("bench",),
        api_key="bench",
        data_dir=Path(folder),
        poll_after_s=3600.0,
        poll_tick_s=3600.0,
    )
    hub = Hub(settings)
    app = hub.app
    pad = "x" * 900
    async with hub:
        paths = []
        for _ in range(TASKS):
            task = await hub.register("generic")
            paths.append(urlsplit(hub.callback_url(task)).path)

        async def post(number: int) -> None:
            progress = number % 100 if reports == "repeat" else min(number // TASKS + 1, 100)
            body = (
                f'{{"status":"running","progress":{progress},'
                f'"delivery_id":"d-{number}","pad":"{pad}"}}'
            ).encode()
            scope = {
                "type": "http",
                "method": "POST",
                "path": paths[number % TASKS],
                "root_path": "",
                "query_string": b"",
                "client": ("127.0.0.1", 1),
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }

            async def receive() -> dict[str, object]:
                return {"type": "http.request", "body": body, "more_body": False}

            statuses: list[int] = []

            async def send(message: dict[str, object]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(int(message["status"]))  # type: ignore[call-overload]

            await app(scope, receive, send)  # type: ignore[arg-type]
            if statuses != [200]:
                raise RuntimeError(f"webhook {number} answered {statuses}")

        async def lane(first: int, end: int) -> None:
            for number in range(first, end, CONCURRENCY):
                await post(number)

        for start, count in ((0, warmup), (warmup, webhooks)):
            lanes = (lane(start + n, start + count) for n in range(CONCURRENCY))
            await asyncio.gather(*lanes)


def count(webhooks: int, warmup: int, reports: str) -> tuple[int, int]:
    """Instructions of the event loop thread and of the whole process, for one run."""
    args = ["--drive", str(webhooks), "--warmup", str(warmup), "--reports", reports]
    return callgrind("bench.instructions", args)


def callgrind(module: str, args: list[str]) -> tuple[int, int]:
    """Run ``python -m module *args --folder F`` under callgrind; the instructions of its
    main (event loop) thread and of the whole process."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--separate-threads=yes",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                module,
                *args,
                "--folder",
                folder,
            ],
            check=True,
            capture_output=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        per_thread = {}
        for part in Path(folder).glob("callgrind.out-*"):
            match = re.search(r"^summary: (\d+)", part.read_text(), re.MULTILINE)
            assert match, f"no summary in {part}"
            per_thread[int(part.name.rsplit("-", 1)[1])] = int(match.group(1))
    return per_thread[1], sum(per_thread.values())  # thread 1 runs the event loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--webhooks", type=int, default=3000, help="webhooks counted")
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument(
        "--reports",
        choices=("repeat", "advance"),
        default="repeat",
        help="repeat each task's progress (stored as stale) or advance it (applied)",
    )
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive is not None:
        # uvloop, as uvicorn[standard] runs
        uvloop.run(drive(args.drive, args.warmup, args.folder, args.reports))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    short, long = 500, 500 + args.webhooks
    print(
        f"counting {short} and {long} webhooks after {args.warmup}, reports that "
        f"{args.reports} each task's progress (a few minutes)..."
    )
    with ThreadPoolExecutor(2) as pool:  # two valgrind processes, one per core
        runs = pool.map(count, (short, long), (args.warmup,) * 2, (args.reports,) * 2)
        (loop_short, all_short), (loop_long, all_long) = runs
    loop = (loop_long - loop_short) / args.webhooks
    whole = (all_long - all_short) / args.webhooks
    print(f"instructions per webhook: event loop thread {loop / 1000:.1f}k, ", end="")
    print(f"whole process {whole / 1000:.1f}k")


if __name__ == "__main__":
    main()
