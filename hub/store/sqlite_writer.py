"""The SQLite file's one writing connection, arranged so the GIL never throttles it.

A writer on its own thread (aiosqlite's design) hands the GIL back and forth with the event
loop at every statement, and at every row of an ``executemany``: sqlite3 releases the GIL
around each step. Under load the event loop holds the GIL most of the time, so each of those
hand-backs can wait out a whole switch interval (5 ms): a batch of 60 events then took longer
than the HTTP work that produced it, and the hub idled at half its CPU.

So the statements of a transaction run on the event loop thread, where they cost a few
microseconds a row, and only the calls that wait on the disk leave it: ``COMMIT`` (the fsync
under ``synchronous=FULL``, and SQLite's automatic WAL checkpoint every 1,000 pages, which
copies the log into the database file), a ``BEGIN`` that finds the file locked by another
process, and bulk maintenance.

The checkpoint stays on the writing connection on purpose. Run from another connection
while the writer keeps appending, a checkpoint never catches up with the end of the log, so
SQLite never gets to restart it: the WAL grew by 50 MB/s under load and every read slowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from hub.errors import StoreUnavailable

logger = logging.getLogger("hub.store")

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
# After a checkpoint resets the log, SQLite truncates the file back to this size, so a burst
# does not leave a large WAL behind.
WAL_SIZE_LIMIT = 64 * 1024 * 1024
PAGE_CACHE_KIB = 64 * 1024  # an upper bound; SQLite allocates it as pages are used

# sqlite3 binds exact int, float and str directly, but sends every other parameter,
# None included, through its adapter look-up, which on Python 3.11 raises and discards an
# AttributeError each time: ~0.6 us per NULL, and an event row binds several. An adapter
# registered for None is found at the first step instead. It is process-wide, and it binds
# None as NULL exactly as before. A dict's ``get`` is the adapter because it is a C
# function that returns None for any key: a Python function costs half as much again.
_NONE_TO_NULL: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NONE_TO_NULL.get)


class SQLiteWriter:
    """Serialized write transactions on one ``sqlite3`` connection."""

    def __init__(self, path: Path, *, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        self._connection: sqlite3.Connection | None = None
        self._blocking: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect and switch to WAL."""
        self._blocking = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-sqlite-io")
        self._connection = await self._call(self._connect)

    async def close(self) -> None:
        """Wait for the transaction in progress, checkpoint what is left, and disconnect."""
        async with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                await self._call(_checkpoint_and_close, connection)
            if self._blocking is not None:
                self._blocking.shutdown(wait=True)
                self._blocking = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE … COMMIT``, rolled back on any error.

        Statements run synchronously on the caller's (event loop) thread; keep them to what a
        batch needs. SQLite errors become :class:`StoreUnavailable`.
        """
        async with self._lock:
            db = self._db()
            try:
                await self._begin(db)
                try:
                    yield db
                    # Off the loop even without an fsync (synchronous=NORMAL): the commit
                    # may run a WAL checkpoint.
                    await self._call(db.execute, "COMMIT")
                except BaseException:
                    _rollback(db)
                    raise
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite write failed: {exc}") from exc

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on the I/O thread, in a transaction of its own.

        For maintenance that may touch many rows (pruning, migrations): the event loop goes on
        while it runs.
        """
        async with self._lock:
            db = self._db()
            try:
                return await self._call(_in_transaction, db, work)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite write failed: {exc}") from exc

    async def _begin(self, db: sqlite3.Connection) -> None:
        # The hub is the file's only writer, so the lock is free and this returns at once;
        # if another process holds it (a backup, a manual edit), wait off the event loop.
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            try:
                await self._call(db.execute, "BEGIN IMMEDIATE")
            finally:
                db.execute("PRAGMA busy_timeout=0")

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the I/O thread.

        If the caller is cancelled meanwhile, this still waits for the call to end before
        giving up the lock: a statement may not start on the connection while COMMIT runs.
        """
        if self._blocking is None:
            raise StoreUnavailable("the store is not started (did you forget `async with hub`?)")
        future = asyncio.get_running_loop().run_in_executor(self._blocking, function, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await future
            raise

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False: the loop thread and the I/O thread take turns, never at
        # once (the lock), and SQLite itself is built thread-safe.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        # SQLite's default page cache is 2 MB. Busy tasks each keep a hot leaf in the events
        # index, and a miss is a read from the OS: 64 MB cut those reads by a third.
        db.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        db.execute("PRAGMA busy_timeout=0")  # see _begin
        return db

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreUnavailable("the store is not started (did you forget `async with hub`?)")
        return self._connection


def _in_transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        return result
    finally:
        db.execute("PRAGMA busy_timeout=0")


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the original error is the one to report
            db.execute("ROLLBACK")


def _checkpoint_and_close(db: sqlite3.Connection) -> None:
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:  # the data is safe in the WAL either way
        logger.warning("final WAL checkpoint failed: %s", exc)
    db.close()
