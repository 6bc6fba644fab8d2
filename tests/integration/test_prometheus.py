"""A real Prometheus (Debian's binary) scrapes the test stack's worker with the relay's own
alert rules, answers PromQL on relay metrics through its HTTP API, and holds every metric
the Grafana dashboard and the alert rules name: they ask only for what the worker exports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from relay.embedded.broker import free_port, stop_process
from tests.helpers.api import create_partner, event, eventually, hook, publish, unique
from tests.integration.conftest import ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "relay.json"
#: A metric name in PromQL: relay's own, and Prometheus's ``up``.
METRIC = re.compile(r"\b(relay_[a-z_]+|up)\b(?!\s*\()")
#: The sample names a family of each type exports.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def queries() -> dict[str, str]:
    """Every PromQL expression of the dashboard and the rules, by where it is."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = {
        f"dashboard panel {p['title']!r}": t["expr"]
        for p in dashboard["panels"]
        for t in p["targets"]
    }
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    return found


def names_in(expr: str) -> set[str]:
    # Label values and regexes in quotes are not metric names.
    return set(METRIC.findall(re.sub(r'"[^"]*"', '""', expr)))


@pytest.fixture
def prometheus(api: ApiUnderTest, tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus on a free loopback port, scraping the worker every second."""
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus is missing: apt-get install prometheus (see .ci/run)"
    worker = urlsplit(api.relay.stack.web_url).netloc
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "relay",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [worker]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    with open(tmp_path / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, 15)


async def query(http: httpx.AsyncClient, promql: str) -> list[dict[str, Any]]:
    r = await http.get("/api/v1/query", params={"query": promql})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def test_prometheus_scrapes_the_worker_evaluates_the_rules_and_has_every_named_metric(
    api: ApiUnderTest, prometheus: str
) -> None:
    # A delivery first, so the latency histograms have their labelled series.
    tag, pid = unique("tag"), unique("p-prom")
    await create_partner(api, pid, tag, [hook(api, pid)[1]])
    await publish(api, event(unique("DOC-PROM"), tag))

    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as http:

        async def target_up() -> list[dict[str, Any]] | None:
            try:
                r = await http.get("/api/v1/targets")
            except httpx.TransportError:
                return None  # not listening yet
            active = r.json()["data"]["activeTargets"]
            return active if active and all(t["health"] == "up" for t in active) else None

        (target,) = await eventually(target_up, timeout=60, what="Prometheus scraping the worker")
        assert target["labels"]["job"] == "relay"

        async def delivered() -> list[dict[str, Any]] | None:
            found = await query(
                http, 'sum(relay_delivery_seconds_count{channel_type="webhook",status="delivered"})'
            )
            return found if found and float(found[0]["value"][1]) >= 1 else None

        await eventually(delivered, timeout=60, what="a delivery counted in Prometheus")
        (partners,) = await query(http, 'relay_partners{job="relay"}')
        assert float(partners["value"][1]) >= 1
        statuses = {
            s["metric"]["status"] for s in await query(http, "sum by (status) (relay_deliveries)")
        }
        assert statuses >= {"pending", "delivered", "retrying", "dead"}

        # Every alert rule evaluates against the real series without an error.
        async def rules_evaluated() -> list[dict[str, Any]] | None:
            r = await http.get("/api/v1/rules")
            rules = [rule for g in r.json()["data"]["groups"] for rule in g["rules"]]
            done = all(rule.get("lastEvaluation", "").startswith("20") for rule in rules)
            return rules if rules and done else None

        rules = await eventually(rules_evaluated, timeout=30, what="the rules evaluated")
        assert {r["name"] for r in rules} == {
            q.removeprefix("alert ") for q in queries() if q.startswith("alert ")
        }
        assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []

        # Every metric the dashboard and the rules name is one Prometheus holds now.
        r = await http.get("/api/v1/label/__name__/values")
        held = set(r.json()["data"])

    scrape = await api.http.get("/metrics")
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(scrape.text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }
    named = {name: where for where, expr in queries().items() for name in names_in(expr)}
    assert len(named) >= 10
    assert {n: w for n, w in named.items() if n != "up" and n not in exported} == {}
    assert {n: w for n, w in named.items() if n not in held} == {}


async def test_metric_names_are_found_in_promql_and_not_in_label_values() -> None:
    expr = 'sum by (kind) (rate(relay_events_total{kind=~"relay_fake\\\\..+"}[5m])) > up'
    assert names_in(expr) == {"relay_events_total", "up"}
