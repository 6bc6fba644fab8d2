"""The Faust application and everything an agent may touch, built once from the settings."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faust
from faust.types import EventT, TopicT
from mode import Service

from relay import topics
from relay.delivery.email import EmailSender
from relay.delivery.webhook import WebhookSender
from relay.errors import InvalidEvent
from relay.intake import Check, default_checks, event_hints
from relay.logs import get_logger
from relay.models import AuditRecord, Rejection
from relay.registry import Registry
from relay.trace import TraceView
from relay.settings import Profile, Settings

log = get_logger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")

#: Bytes of a rejected record kept in ``relay.rejected`` (the rest is cut, marked "…").
RAW_KEEP = 64 * 1024


def today_in_shanghai() -> date:
    """Validity dates in documents are Shanghai calendar dates."""
    return datetime.now(SHANGHAI).date()


def faust_datadir(settings: Settings) -> Path:
    return (settings.data_dir / "faust" / settings.app_id).resolve()


def faust_settings(settings: Settings) -> dict[str, Any]:
    """Faust's own settings for a profile (embedded broker in dev, Apache Kafka in production)."""
    dev = settings.profile == Profile.dev
    return {
        "broker": settings.broker,
        "store": "memory://",
        # exactly_once cannot work on the embedded broker (no idempotent producer), and
        # covers no email or webhook anyway: at-least-once with stable delivery ids.
        "processing_guarantee": "at_least_once",
        # Joining a group takes about half the session timeout on the embedded broker.
        "broker_session_timeout": 6 if dev else 60,
        "broker_heartbeat_interval": 1.5 if dev else 3,
        "broker_rebalance_timeout": 10 if dev else 60,
        "broker_commit_interval": 1.0 if dev else 2.8,
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "topic_allow_declare": True,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": True,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "web_tables_enabled": False,
        "web_host": settings.web_host,
        # Only RELAY_FAUST_* variables may reach Faust, so BROKER_URL or WEB_PORT in the
        # environment cannot silently override ours.
        "env_prefix": "RELAY_FAUST_",
        "autodiscover": False,
        "datadir": str(faust_datadir(settings)),
    }


class Runtime:
    """The app, its topics and table, and the adapters the agents call."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = faust.App(settings.app_id, **faust_settings(settings))
        self.topics: dict[str, TopicT] = {
            spec.name: self.app.topic(
                spec.name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                internal=True,
                partitions=spec.partitions or settings.topic_partitions,
            )
            for spec in topics.ALL
        }
        # document id → planning.DocumentState as JSON; co-partitioned with ACCEPTED.
        self.documents = self.app.Table(
            "documents",
            default=None,
            partitions=settings.topic_partitions,
            key_type=str,
            value_type=None,
        )
        self.registry = Registry(settings)
        self.trace = TraceView(settings)
        self.webhooks = WebhookSender(
            timeout=settings.webhook_timeout, allow_private=settings.allow_private_webhooks
        )
        self.mail: EmailSender | None = None
        if settings.smtp_host:
            self.mail = EmailSender(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=(
                    settings.smtp_password.get_secret_value() if settings.smtp_password else None
                ),
                starttls=settings.smtp_starttls,
                timeout=settings.smtp_timeout,
            )
        #: Extra checks on every event (the code catalogues).
        self.checks: tuple[Check, ...] = default_checks()
        self.counters: Counter[str] = Counter()
        self.started = time.time()
        services = _Services(self)

        async def _start_services() -> None:
            await self.app.add_runtime_dependency(services)

        self.app.task(_start_services)

    def topic(self, name: str) -> TopicT:
        return self.topics[name]

    async def send(self, topic: str, key: str | None, value: bytes) -> tuple[int, int]:
        """Produce, wait for the broker's acknowledgement, and return (partition, offset)."""
        fut = await self.topics[topic].send(
            key=key.encode() if key is not None else None, value=value
        )
        meta = await fut
        return meta.partition, meta.offset

    async def audit(self, record: AuditRecord) -> None:
        """Append a step to the audit topic, keyed by document so its trail stays in order."""
        self.counters[f"audit.{record.kind}"] += 1
        await self.send(topics.AUDIT, record.document_id, record.model_dump_json().encode())

    async def reject(self, err: InvalidEvent, raw: bytes | None, event: EventT[Any] | None) -> None:
        """Record a refused event in ``relay.rejected`` with its reason; nothing is dropped."""
        event_id, doc_id = event_hints(raw)
        text = (raw or b"").decode("utf-8", "replace")
        if len(text) > RAW_KEEP:
            text = text[:RAW_KEEP] + "…"
        msg = event.message if event is not None else None
        rejection = Rejection(
            reason=err.reason,
            message=err.message,
            field=err.field,
            event_id=event_id,
            document_id=doc_id,
            source_topic=msg.topic if msg else None,
            source_partition=msg.partition if msg else None,
            source_offset=msg.offset if msg else None,
            raw=text,
            rejected_at=datetime.now(UTC),
        )
        self.counters[f"rejected.{err.reason}"] += 1
        log.warning(
            "event_rejected",
            reason=err.reason,
            message=err.message,
            event_id=event_id,
            document_id=doc_id,
        )
        await self.send(topics.REJECTED, doc_id, rejection.model_dump_json().encode())
        await self.audit(
            AuditRecord(
                kind="event.rejected",
                at=rejection.rejected_at,
                event_id=event_id,
                document_id=doc_id,
                reason=err.reason,
                detail=err.message,
            )
        )

    @property
    def ready(self) -> bool:
        """Registry caught up and partitions assigned: deliveries will flow."""
        if not self.registry.caught_up.is_set() or self.app.rebalancing:
            return False
        try:
            return bool(self.app.consumer.assignment())
        except Exception:  # the consumer may not exist yet during start-up
            return False


class _Services(Service):
    """Starts and stops the adapters with the worker."""

    def __init__(self, rt: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rt = rt

    async def on_start(self) -> None:
        await self.add_runtime_dependency(self.rt.registry)
        await self.add_runtime_dependency(self.rt.trace)
        await self.rt.webhooks.start()

    async def on_stop(self) -> None:
        await self.rt.webhooks.close()
        if self.rt.mail is not None:
            await self.rt.mail.close()


def build(settings: Settings) -> Runtime:
    """The runtime with every agent and the HTTP application installed."""
    import agents
    from relay.web.api import install as install_web

    rt = Runtime(settings)
    agents.install(rt)
    install_web(rt)
    return rt
