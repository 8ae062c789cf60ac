"""The bus contract: the same tests for every bus (memory, and Redis and PostgreSQL for real)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hub.bus import Bus, bus_from_url
from hub.models import Disposition, EventType, Output, Source, Status
from hub.models import Event as HubEvent
from tests.backends import unique_name

BACKENDS = ["memory", "redis", "postgresql"]


class Collector:
    """A bus sink that remembers what it got and lets a test wait for it (bounded)."""

    def __init__(self) -> None:
        self.events: list[HubEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, events: list[HubEvent]) -> None:
        self.events.extend(events)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[HubEvent]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events


@pytest.fixture(params=BACKENDS)
def bus_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "postgresql":
        # NOTIFY channels are database-wide, not per schema: a private one per test.
        return f"{request.getfixturevalue('postgres_url')}&channel={unique_name('hub_t_')}"
    return str(request.getfixturevalue("redis_url"))


Opener = Callable[[Collector], Awaitable[Bus]]


@pytest.fixture
async def open_bus(bus_url: str) -> AsyncIterator[Opener]:
    """Opens buses on the test's URL (one per simulated process) and closes them after."""
    opened: list[Bus] = []

    async def opener(sink: Collector) -> Bus:
        bus = bus_from_url(bus_url)
        opened.append(bus)
        await bus.start(sink)
        return bus

    yield opener
    for bus in opened:
        await bus.close()


def event(seq: int, task_id: str = "tsk_1") -> HubEvent:
    return HubEvent(
        id=seq * 10,
        seq=seq,
        task_id=task_id,
        provider="generic",
        type=EventType.SUCCEEDED if seq % 2 else EventType.PROGRESS,
        status=Status.SUCCEEDED if seq % 2 else Status.RUNNING,
        disposition=Disposition.APPLIED,
        source=Source.WEBHOOK,
        received_at=time.time(),
        provider_task_id="ext",
        progress=seq,
        outputs=[Output(url=f"https://cdn.example/{seq}.png", index=seq)],
    )


async def test_published_events_reach_this_process_intact(open_bus: Opener) -> None:
    sink = Collector()
    bus = await open_bus(sink)
    sent = [event(1), event(2)]
    await bus.publish(sent)
    got = await sink.wait_for(2)
    assert [e.to_dict() for e in got] == [e.to_dict() for e in sent]


async def test_order_from_one_publisher_is_kept(open_bus: Opener) -> None:
    sink = Collector()
    bus = await open_bus(sink)
    for seq in range(1, 51):
        await bus.publish([event(seq)])
    got = await sink.wait_for(50)
    assert [e.seq for e in got] == list(range(1, 51))


async def test_events_cross_processes_when_the_bus_says_so(open_bus: Opener) -> None:
    here, there = Collector(), Collector()
    publisher = await open_bus(here)
    await open_bus(there)
    await publisher.publish([event(7)])
    await here.wait_for(1)
    if not publisher.crosses_processes:
        assert there.events in ([], here.events)  # memory: nothing leaves its process
        return
    got = await there.wait_for(1)
    assert got[0].to_dict() == here.events[0].to_dict()


async def test_ping_answers_while_running_and_fails_after_close(open_bus: Opener) -> None:
    bus = await open_bus(Collector())
    await asyncio.wait_for(bus.ping(), 5)
    await bus.close()
    with pytest.raises(Exception):  # noqa: B017 - each bus raises its own kind
        await asyncio.wait_for(bus.ping(), 5)


async def test_remote_buses_report_lag(open_bus: Opener) -> None:
    sink = Collector()
    bus = await open_bus(sink)
    lags: list[float] = []
    bus.on_lag = lags.append
    await bus.publish([event(1)])
    await sink.wait_for(1)
    if bus.crosses_processes:
        assert len(lags) == 1 and 0 <= lags[0] < 5


@pytest.mark.redis
async def test_redis_channels_are_separate(redis_url: str) -> None:
    mine, theirs = Collector(), Collector()
    a = bus_from_url(redis_url)
    b = bus_from_url(redis_url.replace("channel=", "channel=other-"))
    await a.start(mine)
    await b.start(theirs)
    try:
        await b.publish([event(1)])
        await a.publish([event(2)])
        assert [e.seq for e in await mine.wait_for(1)] == [2]
        assert [e.seq for e in await theirs.wait_for(1)] == [1]
    finally:
        await a.close()
        await b.close()


async def test_postgres_notifications_split_big_batches_and_announce_huge_events(
    postgres_url: str,
) -> None:
    url = f"{postgres_url}&channel={unique_name('hub_t_')}"
    here, there = Collector(), Collector()
    a, b = bus_from_url(url), bus_from_url(url)
    gap = asyncio.Event()
    b.on_gap = gap.set
    await a.start(here)
    await b.start(there)
    try:
        batch = [event(seq) for seq in range(1, 41)]
        for item in batch:  # about 1 kB each: 40 kB cannot go in one NOTIFY
            item.outputs = [Output(url=f"https://cdn.example/{'x' * 900}/{item.seq}.png")]
        await a.publish(batch)
        got = await there.wait_for(40)
        assert [e.seq for e in got] == list(range(1, 41))
        huge = event(41)
        huge.outputs = [Output(url=f"https://cdn.example/{'y' * 4000}/{i}") for i in range(3)]
        await a.publish([huge])
        await asyncio.wait_for(gap.wait(), 5)
        assert len(there.events) == 40  # the receiver reads that one from the store instead
    finally:
        await a.close()
        await b.close()
