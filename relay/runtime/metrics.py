"""The worker's Prometheus metrics (``GET /metrics``), on a registry of its own.

Steps are counted in a plain :class:`collections.Counter` on the hot path (a dictionary
increment) and exported at scrape time as ``relay_events_total{kind=…}``; the gauges are
read from the worker when scraped; the two latencies are prometheus_client histograms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Seconds: a delivery takes from a few milliseconds (a receiver on the same network) to
#: the webhook timeout (15 s by default) or an SMTP server's (30 s).
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60)
#: Seconds: matching and planning one document version against every partner.
MATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    def __init__(self, counters: Counter[str], gauges: Callable[[], dict[str, float]]) -> None:
        """``counters``: the worker's step counts; ``gauges``: name → value, read at scrape."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.delivery_seconds = Histogram(
            "relay_delivery_seconds",
            "How long delivery attempts took, by channel type and outcome.",
            ["channel_type", "status"],
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.match_seconds = Histogram(
            "relay_match_seconds",
            "How long matching and planning one document version took.",
            buckets=MATCH_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Steps(counters, gauges))
        self._delivery: dict[tuple[str, str], Histogram] = {}

    def observe_delivery(self, channel_type: str, status: str, seconds: float) -> None:
        """One attempt's latency (the labelled child is looked up once per label pair)."""
        child = self._delivery.get((channel_type, status))
        if child is None:
            child = self._delivery[(channel_type, status)] = self.delivery_seconds.labels(
                channel_type, status
            )
        child.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


#: Gauges read from the worker at scrape time: name → help.
GAUGES = {
    "relay_partners": "Partners held by this worker's registry.",
    "relay_group_workers": "Workers of the consumer group seen alive (their beats).",
    "relay_group_partition_problems": (
        "Partitions held by no worker, by two, or not read for too long (relay/core/coverage.py)."
    ),
}


class _Steps(Collector):
    def __init__(self, counters: Counter[str], gauges: Callable[[], dict[str, float]]) -> None:
        self.counters = counters
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        steps = CounterMetricFamily("relay_events", "Relay steps by kind.", labels=["kind"])
        for kind, n in sorted(self.counters.items()):
            steps.add_metric([kind], n)
        yield steps
        values = self.gauges()
        for name, help_text in GAUGES.items():
            yield GaugeMetricFamily(name, help_text, value=values.get(name, 0.0))
