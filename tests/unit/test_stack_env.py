"""The embedded stack hands its workers the RELAY_* settings it was started with."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.core.settings import Settings
from relay.embedded.stack import Stack


def test_workers_get_the_settings_from_the_environment_and_the_stacks_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_TOPIC_PARTITIONS", "8")
    monkeypatch.setenv("RELAY_LOG_LEVEL", "warning")
    monkeypatch.setenv("RELAY_FAUST_STREAM_BUFFER_MAXSIZE", "8192")
    monkeypatch.setenv("RELAY_NOT_A_SETTING", "x")
    settings = Settings(app_id="env-test")  # as bench/fanout.py and `relay dev` build it
    stack = Stack(settings, [], run_dir=tmp_path)
    stack.worker_settings = settings.replace(
        profile="dev", broker_url="kafka://127.0.0.1:19092", web_port=6100
    )
    env = stack.worker_env()
    assert env["RELAY_TOPIC_PARTITIONS"] == "8"
    assert env["RELAY_LOG_LEVEL"] == "warning"
    assert env["RELAY_APP_ID"] == "env-test"
    # The stack's own changes win over the environment's.
    assert env["RELAY_PROFILE"] == "dev" and env["RELAY_WEB_PORT"] == "6100"
    assert env["RELAY_BROKER_URL"] == "kafka://127.0.0.1:19092"
    # Faust's own knobs pass through; a variable the relay does not know does not.
    assert env["RELAY_FAUST_STREAM_BUFFER_MAXSIZE"] == "8192"
    assert "RELAY_NOT_A_SETTING" not in env
    # And the worker reads back what the stack resolved.
    monkeypatch.delenv("RELAY_TOPIC_PARTITIONS")
    for name, value in env.items():
        if name.startswith("RELAY_"):
            monkeypatch.setenv(name, value)
    assert Settings().topic_partitions == 8
