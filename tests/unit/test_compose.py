"""docker-compose.yml cannot run here (no Docker engine): check its shape and honesty instead."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from relay.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_services_and_dependencies() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"kafka", "relay-worker"}
    worker = services["relay-worker"]
    assert worker["command"] == ["relay", "worker"]
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "healthcheck" in services["kafka"] and "healthcheck" in worker


def test_images_are_pinned() -> None:
    for name, svc in COMPOSE["services"].items():
        if "image" in svc:
            assert re.search(r":\d+\.\d+\.\d+$", svc["image"]), f"{name} image is not pinned"


def test_every_relay_variable_is_a_real_setting() -> None:
    fields = {f"RELAY_{name.upper()}" for name in Settings.model_fields}
    env = COMPOSE["services"]["relay-worker"]["environment"]
    unknown = [k for k in env if k.startswith("RELAY_") and k not in fields]
    assert unknown == []
    assert env["RELAY_BROKER_URL"] == "kafka://kafka:9092"
    assert env["RELAY_PROFILE"] == "production"
    assert env["RELAY_ALLOW_PRIVATE_WEBHOOKS"] == "false"


def test_kafka_is_kraft_without_auto_created_topics() -> None:
    env = COMPOSE["services"]["kafka"]["environment"]
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
    final = docker.rsplit("FROM ", 1)[1]
    assert "USER relay" in final and "HEALTHCHECK" in final and "/healthz" in final
