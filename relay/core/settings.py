"""The one typed settings object, read once from ``RELAY_*`` environment variables."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from relay.core.clock import Clock, parse_offset
from relay.core.errors import ConfigError

#: Like the best webhook services: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)

#: Where the embedded broker listens, and so what every command talks to by default.
EMBEDDED_BROKER_URL = "kafka://127.0.0.1:9092"


class Profile(StrEnum):
    """Tuning profile: ``dev`` for the embedded broker, ``production`` for Apache Kafka."""

    dev = "dev"
    production = "production"


class TableStore(StrEnum):
    """Where a worker keeps its tables (the ledger, parked retries, robots' pacing…).

    ``memory://`` (the default): in memory, rebuilt from the changelog topics at every
    start. ``rocksdb://``: RocksDB databases under ``RELAY_DATA_DIR`` (one per partition),
    kept across restarts, so a restarted worker reads only the changelog written since;
    needs the ``rocksdb`` extra (``pip install 'policy-relay[rocksdb]'``).
    """

    memory = "memory://"
    rocksdb = "rocksdb://"


class Membership(StrEnum):
    """How a worker joins its consumer group (KIP-345 static membership, or dynamic).

    ``auto``: static when ``RELAY_INSTANCE_ID`` is set in the production profile (Apache
    Kafka hands a restarted static member its partitions back without a rebalance);
    dynamic on the embedded broker, whose Tansu 0.6 re-runs the assignment without a new
    generation when a static member rejoins, so the other workers keep their old partitions
    and some partitions are read by nobody (docs/reliability.md, "Orphaned partitions").
    ``static`` forces it (with the embedded broker: to reproduce that bug).
    """

    auto = "auto"
    static = "static"
    dynamic = "dynamic"


@dataclass(frozen=True)
class GroupTiming:
    """Consumer-group timing in seconds, per profile."""

    #: The broker drops a member that sent no heartbeat for this long.
    session: float
    heartbeat: float
    #: How long a rebalance may take before members that did not rejoin are dropped.
    rebalance: float
    #: How often each worker reports its partitions on the workers topic.
    beat: float


#: Joining a group takes about half the session timeout on the embedded broker, so dev
#: keeps sessions short; production keeps Kafka's defaults.
DEV_TIMING = GroupTiming(session=6, heartbeat=1.5, rebalance=10, beat=2)
PRODUCTION_TIMING = GroupTiming(session=60, heartbeat=3, rebalance=60, beat=5)


class Settings(BaseSettings):
    """Every knob of the relay. Build it once with :func:`load_settings` and pass it down."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore", frozen=True)

    broker_url: str | None = None
    profile: Profile = Profile.production
    app_id: str = "policy-relay"
    #: A stable name for this worker in the consumer group (static membership): a restarted
    #: worker takes its place back at once instead of waiting out its old session.
    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    group_membership: Membership = Membership.auto
    #: Seconds without a heartbeat before the broker drops a worker from the group (unset:
    #: 6 in dev, 60 in production). With static membership, a worker restarted within it
    #: gets its partitions back without a rebalance.
    group_session_timeout: float | None = Field(default=None, ge=3, le=1800)
    topic_partitions: int = Field(default=4, ge=1, le=256)
    topic_replication_factor: int = Field(default=1, ge=1)
    table_store: TableStore = TableStore.memory

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=0, le=65535)
    public_url: str | None = None

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = Field(default=30.0, gt=0)
    mail_from: str = "徐泾镇政务公开办（政策接力） <policy-relay@localhost>"

    webhook_timeout: float = Field(default=15.0, gt=0)
    allow_private_webhooks: bool = False
    #: A PEM bundle of certificate authorities trusted for HTTPS webhooks and group robots
    #: besides the system's trust store (partners behind an internal CA). It opens no
    #: addresses: private and loopback ones stay refused unless RELAY_ALLOW_PRIVATE_WEBHOOKS.
    extra_ca_file: Path | None = None
    #: Dev only: send group-robot messages for the platforms' own hosts (企业微信, 钉钉, 飞书)
    #: to this base URL instead, keeping path and query (``relay dev`` / ``relay demo`` point
    #: it at their local robot sink). Refused in production.
    bot_sink_url: str | None = None

    operator_token: SecretStr | None = None
    #: While rotating the operator token: the old one, still accepted (docs/operations.md).
    previous_operator_token: SecretStr | None = None
    #: Signs the acknowledgement links in emails and webhooks (HMAC); shared by all workers.
    link_secret: SecretStr | None = None
    #: While rotating the link secret: the old one, so links already sent keep working.
    previous_link_secret: SecretStr | None = None
    retry_schedule: Annotated[tuple[float, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE
    #: Timeouts and 429s are never retried sooner than this many seconds.
    retry_floor: float = Field(default=60.0, ge=0)
    #: How often due retries are checked for (seconds).
    retry_tick: float = Field(default=1.0, gt=0)
    #: A channel failing continuously for this long is disabled (default 5 days, as Svix).
    disable_after: float = Field(default=5 * 24 * 3600.0, gt=0)
    #: At most this many deliveries per second to one channel.
    channel_rate: float = Field(default=20.0, gt=0)
    #: Records waiting but nothing read for this long: the worker stops, to be restarted.
    stall_timeout: float = Field(default=120.0, gt=0)
    #: Tests and dev only: move the policy calendar (expiry, reminders, digests) by this
    #: much, e.g. ``3650d`` or ``-12h`` (see relay.core.clock). Refused in production.
    clock_offset: str | None = None
    #: Expiry reminders go this many days before a normative document's expires_on.
    reminder_days: int = Field(default=30, ge=1, le=366)
    #: When the drafting units (a document's ``contact`` with an email) get their daily
    #: email of the questions asked on their documents since the last one (Asia/Shanghai).
    question_digest_at: str = Field(default="17:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    #: How often each worker looks for due expiry reminders and digests (seconds).
    calendar_tick: float = Field(default=60.0, gt=0)
    partners_file: Path | None = None
    data_dir: Path = Path(".relay")
    log_level: str = "info"

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return tuple(float(p) for p in parts)
            except ValueError:
                raise ValueError(
                    f"expected comma-separated seconds like '5,300,1800', got {value!r}"
                ) from None
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _positive_schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(v < 0 for v in value):
            raise ValueError("retry delays must be zero or positive seconds")
        return value

    @field_validator("clock_offset")
    @classmethod
    def _offset_form(cls, value: str | None) -> str | None:
        if value is not None:
            parse_offset(value)
        return value

    @field_validator("extra_ca_file")
    @classmethod
    def _ca_file_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("kafka://"):
            raise ValueError(f"expected kafka://host:port, got {value!r}")
        return value

    @model_validator(mode="after")
    def _static_needs_an_id(self) -> Settings:
        if self.group_membership == Membership.static and self.instance_id is None:
            raise ValueError("RELAY_GROUP_MEMBERSHIP=static needs RELAY_INSTANCE_ID")
        return self

    @field_validator("bot_sink_url")
    @classmethod
    def _sink_base(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/?#\s]+", value):
            raise ValueError(f"expected a base URL like http://127.0.0.1:8099, got {value!r}")
        return value

    @model_validator(mode="after")
    def _sink_only_in_dev(self) -> Settings:
        if self.bot_sink_url is not None and self.profile == Profile.production:
            raise ValueError(
                "RELAY_BOT_SINK_URL is for the dev profile only: in production robot "
                "messages go to the platforms"
            )
        return self

    @model_validator(mode="after")
    def _smtp_auth_pair(self) -> Settings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("RELAY_SMTP_USERNAME and RELAY_SMTP_PASSWORD must be set together")
        return self

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with ``changes`` applied (``model_copy`` would skip validation)."""
        return type(self).model_validate({**self.model_dump(), **changes})

    @property
    def clock(self) -> Clock:
        """The policy calendar; :class:`ConfigError` for a moved clock in production."""
        if self.clock_offset is None:
            return Clock()
        if self.profile == Profile.production:
            raise ConfigError(
                "RELAY_CLOCK_OFFSET is for tests and the dev profile only: in production "
                "the policy calendar is the real one"
            )
        return Clock(parse_offset(self.clock_offset))

    @property
    def broker(self) -> str:
        """The broker URL every command uses; unset means the embedded broker."""
        return self.broker_url or EMBEDDED_BROKER_URL

    @property
    def bootstrap_servers(self) -> str:
        """The broker as aiokafka wants it (``host:port[,host:port]``)."""
        return ",".join(part.removeprefix("kafka://") for part in self.broker.split(";"))

    @property
    def group_timing(self) -> GroupTiming:
        timing = DEV_TIMING if self.profile == Profile.dev else PRODUCTION_TIMING
        if self.group_session_timeout is None:
            return timing
        session = self.group_session_timeout
        # Kafka wants heartbeats well within the session: a third of it at most.
        return replace(timing, session=session, heartbeat=min(timing.heartbeat, session / 3))

    @property
    def group_instance_id(self) -> str | None:
        """The static-membership id the consumer joins with, or None for dynamic membership."""
        if self.group_membership == Membership.dynamic:
            return None
        if self.group_membership == Membership.auto and self.profile == Profile.dev:
            return None
        return self.instance_id

    @property
    def fetch_max_wait_ms(self) -> int:
        """How long a fetch may wait for new records: short on the embedded broker."""
        return 50 if self.profile == Profile.dev else 500

    @property
    def base_url(self) -> str:
        """The URL partners use to reach the API (acknowledgement links point here)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::") else self.web_host
        return f"http://{host}:{self.web_port}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment, failing with one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        name = f"RELAY_{loc.upper()}" if loc else "RELAY_* settings"
        value = err.get("input")
        shown = "" if isinstance(value, dict) or value is None else f" (got {value!r})"
        raise ConfigError(f"{name}: {err['msg']}{shown}") from e
