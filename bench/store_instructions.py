"""Instructions per operation of the SQLite store's write path, in batches of a fixed size.

    python -m bench.store_instructions [--batches 32] [--reports advance|repeat]

``bench.instructions`` counts the whole ingest path, but how many webhooks share a commit
follows the fsync's time, so its counts move by a few percent between runs. This drives
:meth:`SQLiteStore.write` directly with batches of exactly 64 operations (1 KiB bodies over
1,024 tasks, a real SQLite file, no HTTP and no group committer) under ``valgrind
--tool=callgrind``, twice with different numbers of batches, and divides the difference in
instructions by the difference in operations: a figure that repeats to within about 1k
instructions, for changes to the planner and the rows a batch writes.

``--reports advance`` (the default) raises each task's progress by one per report, so every
report is applied and rewrites its task's row, as a provider's progress webhooks do;
``repeat`` sends the same progress again, so each is stored as stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvloop

from bench.instructions import callgrind

BATCH = 64
TASKS = 1024
WARMUP_BATCHES = 16


async def drive(batches: int, folder: str, reports: str) -> None:
    """Create the tasks, write the warm-up batches, then ``batches`` more."""
    from hub.models import Source, Status, Task, Update
    from hub.store.base import CreateTask, Ingest
    from hub.store.sqlite import SQLiteStore

    store = SQLiteStore(Path(folder) / "hub.db")
    await store.start()
    try:
        now = time.time()
        tasks = [Task(f"tsk_{n:06d}", "generic", Status.QUEUED, now, now) for n in range(TASKS)]
        await store.write([CreateTask(task) for task in tasks])
        raw = '{"pad":"' + "x" * 900 + '"}'
        number = 0
        for _ in range(WARMUP_BATCHES + batches):
            ops = []
            for _ in range(BATCH):
                progress = min(number // TASKS + 1, 100) if reports == "advance" else 1
                update = Update(Status.RUNNING, progress=progress, delivery_id=str(number))
                task_id = tasks[number % TASKS].id
                ops.append(Ingest("generic", update, Source.WEBHOOK, time.time(), raw, task_id))
                number += 1
            await store.write(ops)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=32, help="batches counted")
    parser.add_argument("--reports", choices=("advance", "repeat"), default="advance")
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive is not None:
        uvloop.run(drive(args.drive, args.folder, args.reports))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    short, long = 8, 8 + args.batches
    print(f"counting {short} and {long} batches of {BATCH} (reports that {args.reports})...")
    with ThreadPoolExecutor(2) as pool:  # two valgrind processes, one per core
        runs = list(
            pool.map(
                lambda n: callgrind(
                    "bench.store_instructions", ["--drive", str(n), "--reports", args.reports]
                ),
                (short, long),
            )
        )
    operations = args.batches * BATCH
    loop = (runs[1][0] - runs[0][0]) / operations
    whole = (runs[1][1] - runs[0][1]) / operations
    print(f"instructions per operation: event loop thread {loop / 1000:.1f}k, ", end="")
    print(f"whole process {whole / 1000:.1f}k")


if __name__ == "__main__":
    main()
