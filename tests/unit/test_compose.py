"""docker-compose.yml cannot run here (no Docker engine): check it against the Compose
specification's JSON schema (vendored in deploy/schema/), the relay's settings object, and
the Prometheus and Grafana files it mounts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from relay.core.settings import Settings, TableStore, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
WORKERS = {name: svc for name, svc in SERVICES.items() if svc.get("command") == ["relay", "worker"]}
DEPLOY = ROOT / "deploy"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def resolved(value: str) -> str:
    """A compose value as it would be with no variable set: ``${X:-default}`` gives the
    default, ``${X:?message}`` (required) a stand-in."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "set-by-the-operator", value)


def test_the_file_follows_the_compose_specification() -> None:
    schema = json.loads((DEPLOY / "schema" / "compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(COMPOSE)
    ]
    assert errors == []


def test_a_broken_file_is_caught_by_the_schema() -> None:
    # The check above could fail: a misspelt key and a wrong type are errors.
    schema = json.loads((DEPLOY / "schema" / "compose-spec.json").read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["kafka"]["helthcheck"] = {}
    broken["services"]["kafka"]["ports"] = 9092
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(broken))
    assert len(errors) == 2


def test_services_and_dependencies() -> None:
    assert set(SERVICES) == {
        "kafka",
        "relay-worker-1",
        "relay-worker-2",
        "mailpit",
        "prometheus",
        "grafana",
    }
    assert len(WORKERS) >= 2
    for worker in WORKERS.values():
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert "/healthz" in " ".join(worker["healthcheck"]["test"])
    assert "healthcheck" in SERVICES["kafka"]


def test_images_are_pinned() -> None:
    for name, svc in SERVICES.items():
        assert re.search(r":v?\d+\.\d+\.\d+$", svc["image"]), f"{name} image is not pinned"


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_every_relay_variable_is_a_real_setting_with_a_valid_value(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = {f"RELAY_{field.upper()}" for field in Settings.model_fields}
    env = WORKERS[name]["environment"]
    unknown = [
        k
        for svc in SERVICES.values()
        for k in svc.get("environment", {})
        if k.startswith("RELAY_") and k not in fields
    ]
    assert unknown == []
    for key in list(os.environ):
        if key.startswith("RELAY_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, resolved(str(value)))
    settings = load_settings()  # ConfigError, naming the variable, if one is wrong
    assert settings.broker == "kafka://kafka:9092"
    assert settings.profile == "production"
    assert settings.allow_private_webhooks is False
    assert settings.table_store == TableStore.rocksdb
    assert settings.group_instance_id == env["RELAY_INSTANCE_ID"]  # static membership
    assert settings.group_session_timeout is None  # Kafka's default group timeouts
    assert settings.operator_token is not None and settings.link_secret is not None


def test_workers_share_the_app_and_each_has_its_own_id_and_store() -> None:
    envs = [w["environment"] for w in WORKERS.values()]
    assert len({e["RELAY_APP_ID"] for e in envs}) == 1
    assert len({e["RELAY_LINK_SECRET"] for e in envs}) == 1
    assert len({e["RELAY_INSTANCE_ID"] for e in envs}) == len(WORKERS)
    assert {e["RELAY_INSTANCE_ID"] for e in envs} == set(WORKERS)
    stores = []
    for worker in WORKERS.values():
        (mount,) = worker["volumes"]
        volume, target = mount.split(":")
        assert target == worker["environment"]["RELAY_DATA_DIR"]
        stores.append(volume)
    assert len(set(stores)) == len(WORKERS)
    # As many partitions as the workers could ever grow to, more than there are now.
    assert int(envs[0]["RELAY_TOPIC_PARTITIONS"]) > len(WORKERS)


def test_volumes_and_ports_are_consistent() -> None:
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, svc in SERVICES.items():
        for mount in svc.get("volumes", []):
            source, target = mount.split(":")[:2]
            assert target.startswith("/"), f"{name}: {mount}"
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
            else:
                used.add(source)
    assert used == declared
    host_ports = [p.split(":")[0] for svc in SERVICES.values() for p in svc.get("ports", [])]
    assert len(host_ports) == len(set(host_ports))
    for worker in WORKERS.values():
        (port,) = worker["ports"]
        assert port.split(":")[1] == worker["environment"]["RELAY_WEB_PORT"]
        assert worker["environment"]["RELAY_WEB_HOST"] == "0.0.0.0"


def test_only_the_smtp_catcher_is_in_the_staging_profile() -> None:
    in_profiles = {name: svc["profiles"] for name, svc in SERVICES.items() if "profiles" in svc}
    assert in_profiles == {"mailpit": ["staging"]}
    assert SERVICES["mailpit"]["image"].startswith("axllent/mailpit:")


def test_prometheus_scrapes_every_worker_on_its_web_port() -> None:
    prometheus = SERVICES["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    expected = [f"{name}:{w['environment']['RELAY_WEB_PORT']}" for name, w in WORKERS.items()]
    assert sorted(targets) == sorted(expected)
    for rules in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rules).is_file()


def test_grafana_is_provisioned_with_prometheus_and_the_relay_dashboard() -> None:
    grafana = SERVICES["grafana"]
    mounts = dict(m.split(":")[:2] for m in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (datasource,) = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")[
        "datasources"
    ]
    port = SERVICES["prometheus"]["ports"][0].split(":")[1]
    assert datasource["url"] == f"http://prometheus:{port}"
    (provider,) = load_yaml(DEPLOY / "grafana/provisioning/dashboards/relay.yml")["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    dashboard = json.loads((DEPLOY / "grafana/dashboards/relay.json").read_text(encoding="utf-8"))
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/relay.json"


def test_kafka_is_kraft_without_auto_created_topics() -> None:
    env = SERVICES["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    # The relay declares its own topics with their partition counts.
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_dockerfile_installs_the_wheel_and_runs_as_a_user_with_a_healthcheck() -> None:
    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    # The sources go into the build stage, and only its wheel into the image.
    for folder in ("relay", "agents", "templates", "config", "examples"):
        assert f"COPY {folder} " in docker
    assert "pip wheel" in docker and "/wheels/*.whl" in docker
    assert "install -e" not in docker and "-e ." not in docker
    assert "-c /tmp/constraints.txt" in docker  # the same pins as CI
    assert "[rocksdb]" in docker and "RELAY_TABLE_STORE=rocksdb://" in docker
    final = docker.rsplit("FROM ", 1)[1]
    assert "USER relay" in final and "HEALTHCHECK" in final and "/healthz" in final


def test_on_kafka_the_registry_and_the_dead_letters_outlive_the_default_retention() -> None:
    from relay.core import topics

    partners = dict(topics.spec(topics.PARTNERS).config)
    assert partners["cleanup.policy"] == "compact"
    assert dict(topics.spec(topics.DEAD_LETTER).config)["retention.ms"] == "-1"
