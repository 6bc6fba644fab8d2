"""GET /metrics, read with prometheus_client's own parser: the step counts, the gauges and
the delivery and match latency histograms, moving with a document relayed through the API."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.runtime.metrics import GAUGES
from tests.helpers.api import create_partner, event, eventually, hook, publish, unique
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def scrape(api: ApiUnderTest) -> dict[str, Any]:
    r = await api.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(r.text)}


def sample(family: Any, suffix: str, **labels: str) -> float:
    """The value of the family's sample named ``<family><suffix>`` with exactly ``labels``
    (histogram buckets aside), 0 if there is none."""
    for s in family.samples:
        own = {k: v for k, v in s.labels.items() if k != "le"}
        if s.name == family.name + suffix and own == labels and "le" not in s.labels:
            return float(s.value)
    return 0.0


async def test_metrics_parse_and_count_a_relayed_document(api: ApiUnderTest) -> None:
    before = await scrape(api)
    assert before["relay_events"].type == "counter"
    assert before["relay_delivery_seconds"].type == "histogram"
    assert before["relay_match_seconds"].type == "histogram"
    for gauge in GAUGES:
        assert before[gauge].type == "gauge"
    delivered_before = sample(
        before["relay_delivery_seconds"], "_count", channel_type="webhook", status="delivered"
    )
    matched_before = sample(before["relay_match_seconds"], "_count")

    tag, pid = unique("tag"), unique("p-metrics")
    await create_partner(api, pid, tag, [hook(api, pid)[1]])
    await publish(api, event(unique("DOC-METRICS"), tag))

    async def counted() -> dict[str, Any] | None:
        now = await scrape(api)
        delivered = sample(
            now["relay_delivery_seconds"], "_count", channel_type="webhook", status="delivered"
        )
        return now if delivered > delivered_before else None

    after = await eventually(counted, what="the delivery in relay_delivery_seconds")
    assert sample(after["relay_match_seconds"], "_count") > matched_before
    assert sample(after["relay_match_seconds"], "_sum") > 0
    # The step counts went up too, under their kinds.
    assert sample(after["relay_events"], "_total", kind="delivery.webhook.delivered") >= 1
    assert sample(after["relay_partners"], "") >= 1
    assert sample(after["relay_group_workers"], "") >= 1  # this one, at least
    assert sample(after["relay_worker_ready"], "") == 1
    assert sample(after["relay_deliveries"], "", status="delivered") >= 1
    # The lag was measured for the scrape: one sample per topic this worker reads.
    assert {s.labels["topic"] for s in after["relay_consumer_lag"].samples} >= {
        "documents.published"
    }
    # Every bucket of a histogram is there, up to +Inf, and they only grow.
    buckets = [
        s
        for s in after["relay_delivery_seconds"].samples
        if s.name.endswith("_bucket") and s.labels.get("status") == "delivered"
    ]
    assert buckets[-1].labels["le"] == "+Inf"
    values = [b.value for b in buckets if b.labels.get("channel_type") == "webhook"]
    assert values == sorted(values) and values[-1] >= 1
