"""The Prometheus configuration, alert rules and Grafana queries, checked by Debian's
``promtool`` (package ``prometheus``; .ci/run installs it): the config and rules are valid,
each alert's unit test passes, and every dashboard query is valid PromQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "relay.json"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool is not None, "promtool is missing: apt-get install prometheus (see .ci/run)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def test_the_configuration_is_valid() -> None:
    done = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout


def test_the_rules_are_valid() -> None:
    done = promtool("check", "rules", str(PROMETHEUS / "rules.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_alert_fires_and_stays_quiet_as_its_unit_test_says() -> None:
    done = promtool("test", "rules", str(PROMETHEUS / "rules_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = {
        r["alert"]
        for g in yaml.safe_load((PROMETHEUS / "rules.yml").read_text(encoding="utf-8"))["groups"]
        for r in g["rules"]
    }
    tested = {
        case["alertname"]
        for t in yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text(encoding="utf-8"))[
            "tests"
        ]
        for case in t["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert tested == alerts  # every alert has a test in which it fires


def test_a_failing_rule_test_fails(tmp_path: Path) -> None:
    # promtool really compares: a test expecting the wrong labels fails.
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text(encoding="utf-8"))
    tests["rule_files"] = [str(PROMETHEUS / "rules.yml")]
    tests["tests"][0]["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"]["severity"] = "info"
    (tmp_path / "t.yml").write_text(yaml.safe_dump(tests, allow_unicode=True), encoding="utf-8")
    done = promtool("test", "rules", str(tmp_path / "t.yml"))
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    # As recording rules, promtool parses each one.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(exprs)} rules found" in done.stdout
