"""The worker's Prometheus metrics (``GET /metrics``), on a registry of its own.

Steps are counted in a plain :class:`collections.Counter` on the hot path (a dictionary
increment) and exported at scrape time as ``relay_events_total{kind=…}``; the gauges are
read from the worker when scraped; the two latencies are prometheus_client histograms.
``deploy/prometheus/rules.yml`` and ``deploy/grafana/relay-dashboard.json`` use only the
names here (tests/integration/test_prometheus.py checks them against a scrape).
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


#: A gauge's value: one number, or one per value of its label (see LABELLED).
GaugeValue = float | dict[str, float]


class Metrics:
    def __init__(self, counters: Counter[str], gauges: Callable[[], dict[str, GaugeValue]]) -> None:
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
    "relay_worker_ready": "1 when this worker is ready (GET /readyz): registry caught up, "
    "partitions assigned.",
    "relay_consumer_lag": "Records waiting in the partitions this worker holds (end offset − "
    "position), by topic; absent while it rebalances or cannot reach the broker.",
    "relay_deliveries": "Deliveries in each status now, over all workers (from the audit topic).",
    "relay_dead_letters": "Deliveries in the dead letters now (failed, disabled or dead; "
    "replayable), over all workers.",
    "relay_oldest_pending_delivery_seconds": "How long the longest-waiting unsettled delivery "
    "has been due (since planned, or since its retry, digest or robot slot fell due), over "
    "all workers; 0 when none is due.",
    "relay_bot_channels_throttled": "Group-robot channels the platform throttled that may not "
    "send yet (钉钉 130101: 10 minutes), in the partitions this worker holds.",
}

#: The label of each gauge that has one.
LABELLED = {"relay_consumer_lag": "topic", "relay_deliveries": "status"}


class _Steps(Collector):
    def __init__(self, counters: Counter[str], gauges: Callable[[], dict[str, GaugeValue]]) -> None:
        self.counters = counters
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        steps = CounterMetricFamily("relay_events", "Relay steps by kind.", labels=["kind"])
        for kind, n in sorted(self.counters.items()):
            steps.add_metric([kind], n)
        yield steps
        values = self.gauges()
        for name, help_text in GAUGES.items():
            value = values.get(name, 0.0)
            label = LABELLED.get(name)
            if label is None:
                assert not isinstance(value, dict)
                yield GaugeMetricFamily(name, help_text, value=value)
                continue
            family = GaugeMetricFamily(name, help_text, labels=[label])
            for key, amount in sorted(value.items() if isinstance(value, dict) else []):
                family.add_metric([key], amount)
            yield family
