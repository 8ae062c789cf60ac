"""Prometheus metrics of one :class:`~hub.core.Hub`, served at ``GET /metrics``.

Each hub has its own :class:`~prometheus_client.CollectorRegistry` (not the process-global
one), so an application or a test can run several hubs in one process. Counters are per
process, as usual with Prometheus: sum them over replicas in the query.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from hub.core import Hub

#: Bus lag buckets, seconds: sub-millisecond on one host up to a struggling network.
LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Write batch durations, seconds: an fsync on a fast disk up to a store in trouble.
COMMIT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
#: Operations per write batch: one caller alone up to the committer's cap.
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class HubMetrics:
    """The hub's counters, gauges and histograms, and the hooks that feed them."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self._webhook_children: dict[tuple[str, str], Counter] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks = Counter(
            "hub_webhooks",
            "Webhooks taken in, by provider and outcome (the disposition, or the error code)",
            ["provider", "outcome"],
            registry=r,
        )
        self.duplicates = Counter(
            "hub_duplicate_webhooks",
            "Webhooks that repeated an earlier delivery and were not fanned out again",
            ["provider"],
            registry=r,
        )
        self.poll_calls = Counter(
            "hub_poll_calls",
            "Status polls made to providers, by provider and outcome",
            ["provider", "outcome"],
            registry=r,
        )
        self.open_streams = Gauge(
            "hub_open_streams", "Server-Sent Event streams open on this process", registry=r
        )
        self.waiters = Gauge(
            "hub_waiters", "Calls to wait() (and ?wait= requests) blocked right now", registry=r
        )
        self.bus_lag = Histogram(
            "hub_bus_lag_seconds",
            "Time from publishing committed events to receiving them from the bus",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.bus_reconnects = Counter(
            "hub_bus_reconnects", "Times the bus connection came back after a loss", registry=r
        )
        self.commit_seconds = Histogram(
            "hub_commit_seconds",
            "Time to write and commit one group-commit batch (fsync and event loop waits included)",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.commit_batch_size = Histogram(
            "hub_commit_batch_size",
            "Operations (webhooks, registrations, binds) written per group-commit batch",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.delivered_seq = Gauge(
            "hub_delivered_seq",
            "Last fan-out log position delivered on this process (compare across replicas)",
            registry=r,
        )

    @classmethod
    def for_hub(cls, hub: Hub) -> HubMetrics:
        """Metrics wired to ``hub``: gauges read its state at scrape time, the bus reports lag."""
        metrics = cls()
        metrics.waiters.set_function(lambda: len(hub.waiters))
        metrics.open_streams.set_function(lambda: len(hub.fanout))
        metrics.delivered_seq.set_function(lambda: hub.dispatcher.cursor)
        hub.bus.on_lag = metrics.bus_lag.observe
        metrics.registry.register(_StreamCuts(hub))
        return metrics

    def webhook(self, provider: str, outcome: str) -> None:
        """Count one webhook; ``outcome`` is its disposition or the error code it got."""
        # labels() validates and locks on every call (~3 us); the children are cached here
        # because this runs once per webhook. Both label values come from bounded sets.
        counter = self._webhook_children.get((provider, outcome))
        if counter is None:
            counter = self._webhook_children[(provider, outcome)] = self.webhooks.labels(
                provider, outcome
            )
        counter.inc()
        if outcome == "duplicate":
            self.duplicates.labels(provider).inc()

    def commit(self, size: int, seconds: float) -> None:
        """Record one group-commit batch of ``size`` operations that took ``seconds``."""
        self.commit_batch_size.observe(size)
        self.commit_seconds.observe(seconds)

    def poll_call(self, provider: str, outcome: str) -> None:
        """Count one status poll (for the poller): ``outcome`` such as ``ok`` or ``error``."""
        self.poll_calls.labels(provider, outcome).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _StreamCuts(Collector):
    """``hub_sse_streams_cut_total``, read from the fan-out's own count at scrape time."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "hub_sse_streams_cut",
            "Streams cut off for falling too far behind (their clients resume with Last-Event-ID)",
        )
        family.add_metric([], self._hub.fanout.stats.cut_slow)
        yield family
