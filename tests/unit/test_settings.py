"""Settings come from RELAY_* variables only, typed, and fail naming the variable."""

from __future__ import annotations

import pytest

from relay.core.errors import ConfigError
from relay.core.settings import DEFAULT_RETRY_SCHEDULE, EMBEDDED_BROKER_URL, Profile, load_settings
from relay.runtime.app import faust_settings


def test_defaults_point_at_the_embedded_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAY_BROKER_URL", raising=False)
    s = load_settings()
    assert s.broker == EMBEDDED_BROKER_URL
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert (s.web_host, s.web_port) == ("127.0.0.1", 6066)
    assert s.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert s.allow_private_webhooks is False


def test_retry_schedule_is_comma_separated_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_RETRY_SCHEDULE", "1, 2.5,30")
    assert load_settings().retry_schedule == (1.0, 2.5, 30.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAY_WEB_PORT", "http"),
        ("RELAY_RETRY_SCHEDULE", "5,soon"),
        ("RELAY_BROKER_URL", "localhost:9092"),
        ("RELAY_PROFILE", "staging"),
    ],
)
def test_bad_values_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(name)
    assert "\n" not in str(info.value)


def test_smtp_credentials_come_in_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_SMTP_USERNAME", "relay")
    with pytest.raises(ConfigError, match="RELAY_SMTP_PASSWORD"):
        load_settings()


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_OPERATOR_TOKEN", "s3cret-token")
    s = load_settings()
    assert "s3cret-token" not in repr(s)
    assert s.operator_token is not None
    assert s.operator_token.get_secret_value() == "s3cret-token"


def test_faust_variables_cannot_override_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_PORT", "7777")
    monkeypatch.setenv("BROKER_URL", "kafka://elsewhere:1")
    conf = faust_settings(load_settings(web_port=6070))
    assert conf["env_prefix"] == "RELAY_FAUST_"
    assert conf["web_port"] == 6070


def test_dev_profile_tunes_for_the_embedded_broker() -> None:
    dev = faust_settings(load_settings(profile=Profile.dev))
    prod = faust_settings(load_settings(profile=Profile.production))
    assert dev["broker_session_timeout"] < prod["broker_session_timeout"]
    assert dev["web_tables_enabled"] is False and prod["web_tables_enabled"] is False
    assert dev["processing_guarantee"] == "at_least_once"


@pytest.mark.parametrize(
    ("profile", "membership", "expected"),
    [
        # Apache Kafka: a restarted static member gets its partitions back, no rebalance.
        ("production", "auto", "w7"),
        # The embedded broker orphans partitions when a static member rejoins.
        ("dev", "auto", None),
        ("dev", "static", "w7"),
        ("production", "dynamic", None),
    ],
)
def test_static_membership_only_where_the_broker_handles_it(
    monkeypatch: pytest.MonkeyPatch, profile: str, membership: str, expected: str | None
) -> None:
    monkeypatch.setenv("RELAY_PROFILE", profile)
    monkeypatch.setenv("RELAY_GROUP_MEMBERSHIP", membership)
    monkeypatch.setenv("RELAY_INSTANCE_ID", "w7")
    s = load_settings()
    assert s.group_instance_id == expected
    assert faust_settings(s)["consumer_group_instance_id"] == expected


def test_static_membership_without_an_instance_id_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RELAY_INSTANCE_ID", raising=False)
    monkeypatch.setenv("RELAY_GROUP_MEMBERSHIP", "static")
    with pytest.raises(ConfigError, match="RELAY_INSTANCE_ID"):
        load_settings()


def test_table_store_is_memory_unless_rocksdb_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RELAY_TABLE_STORE", raising=False)
    assert faust_settings(load_settings())["store"] == "memory://"
    monkeypatch.setenv("RELAY_TABLE_STORE", "rocksdb://")
    assert faust_settings(load_settings())["store"] == "rocksdb://"
    monkeypatch.setenv("RELAY_TABLE_STORE", "redis://")
    with pytest.raises(ConfigError, match="RELAY_TABLE_STORE"):
        load_settings()
