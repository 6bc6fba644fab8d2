"""The Faust application and everything an agent may touch, built once from the settings."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.types import EventT, TopicT
from mode import Service

from relay import faust_fixes, topics
from relay.delivery.email import EmailSender
from relay.delivery.webhook import WebhookSender
from relay.embedded import faust_patches
from relay.errors import InvalidEvent
from relay.group_watch import GroupWatch
from relay.intake import Check, default_checks, rejection
from relay.ledger import batched_table
from relay.logs import get_logger
from relay.models import (
    INTENT_JSON,
    AuditRecord,
    DeliveryIntent,
    EmailChannel,
    audit_value,
    fit,
)
from relay.models.limits import RAW_KEEP
from relay.notices import channel_disabled_email
from relay.registry import Registry
from relay.retrying import RateLimiter, RetryPolicy
from relay.settings import GroupTiming, Profile, Settings
from relay.trace import TraceView
from relay.watchdog import Watchdog

log = get_logger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")

#: Audit records of one document written as one value, at most (about 0.5 kB each).
AUDIT_BATCH = 250
#: Intents of one partition written as one value, at most (about 1 kB each).
INTENT_BUNDLE = 25
_PARTITIONER = DefaultPartitioner()


def _intents_value(chunk: Sequence[tuple[str, DeliveryIntent | dict[str, Any]]]) -> bytes:
    """One intent as itself; several as ``{"intents": [...]}`` (see IntentBundle)."""
    if len(chunk) == 1:
        return INTENT_JSON.dump_json(chunk[0][1], exclude_none=True)
    return INTENT_JSON.dump_json({"intents": [i for _, i in chunk]}, exclude_none=True)


def today_in_shanghai() -> date:
    """Validity dates in documents are Shanghai calendar dates."""
    return datetime.now(SHANGHAI).date()


def faust_datadir(settings: Settings) -> Path:
    return (settings.data_dir / "faust" / settings.app_id).resolve()


def faust_settings(settings: Settings) -> dict[str, Any]:
    """Faust's own settings for a profile (embedded broker in dev, Apache Kafka in production)."""
    dev = settings.profile == Profile.dev
    timing = settings.group_timing
    return {
        "broker": settings.broker,
        "store": "memory://",
        # exactly_once cannot work on the embedded broker (no idempotent producer), and
        # covers no email or webhook anyway: at-least-once with stable delivery ids.
        "processing_guarantee": "at_least_once",
        "broker_session_timeout": timing.session,
        "broker_heartbeat_interval": timing.heartbeat,
        "broker_rebalance_timeout": timing.rebalance,
        # The embedded broker sometimes leaves a fetch unanswered after a member dies; a
        # short request timeout turns that into a quick retry instead of a 90 s stall.
        # (Faust refuses a request timeout shorter than the session.)
        "broker_request_timeout": max(12 if dev else 90, timing.session + 6),
        "broker_commit_interval": 1.0 if dev else 2.8,
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "topic_allow_declare": True,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        # Static membership only where the broker gets it right (see Membership).
        "consumer_group_instance_id": settings.group_instance_id,
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
        # A Faust recovery race that drops or strands records after a restart (any broker).
        faust_fixes.apply()
        if settings.profile == Profile.dev:
            faust_patches.apply(settings.fetch_max_wait_ms)
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
        # delivery id → LedgerEntry: its state and every attempt. Written by the delivery
        # agents, co-partitioned with the delivery topics (all keyed by partner id), a
        # batch's entries in one changelog record per partition (see relay.ledger).
        self.ledger = batched_table(self.app, "ledger", settings.topic_partitions)
        # delivery id → a parked retry ({"p", "due", "key", "intent"}) until it is due.
        self.retries = self._table("retries")
        # "partner/channel" → the channel's current failure streak.
        self.channel_health = self._table("channel-health")
        self.limiter = RateLimiter(settings.channel_rate)
        self.retry_policy = RetryPolicy(settings.retry_schedule, floor=settings.retry_floor)
        self.registry = Registry(settings)
        self.trace = TraceView(settings)
        self.watchdog = Watchdog(self)
        self.group_watch = GroupWatch(self)
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

    def _table(self, name: str) -> Any:
        return self.app.Table(
            name,
            default=None,
            partitions=self.settings.topic_partitions,
            key_type=str,
            value_type=None,
        )

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
        await self.audit_many([record])

    async def audit_many(self, records: list[AuditRecord]) -> None:
        """Append several steps, waiting for the broker once for all of them.

        The records of one document travel together, up to ``AUDIT_BATCH`` in one value
        and within MAX_BUNDLE_BYTES (see :func:`relay.models.audit_records`), in order.
        """
        by_document: dict[str | None, list[AuditRecord]] = {}
        for r in records:
            by_document.setdefault(r.document_id, []).append(r)
            self.counters[f"audit.{r.kind}"] += 1
        await self.send_many(
            topics.AUDIT,
            [
                (doc_id, value)
                for doc_id, group in by_document.items()
                for i in range(0, len(group), AUDIT_BATCH)
                for _, value in fit(group[i : i + AUDIT_BATCH], audit_value)
            ],
        )

    async def send_many(self, topic: str, records: list[tuple[str | None, bytes]]) -> None:
        """Produce many records and wait until the broker has every one."""
        futures = [
            await self.topics[topic].send(key=k.encode() if k is not None else None, value=v)
            for k, v in records
        ]
        await asyncio.gather(*futures)

    async def send_intents(
        self, topic: str, intents: Sequence[DeliveryIntent | dict[str, Any]]
    ) -> None:
        """Produce intents, bundled per partition (see IntentBundle).

        Each intent goes to the partition its partner id hashes to (Kafka's default
        partitioner, as for a keyed record), so a partner's deliveries stay in one
        partition whether they come bundled or, as retries do, one by one. An intent may
        be a model or its JSON-ready form (:func:`relay.models.first_attempt`). A bundle
        holds up to INTENT_BUNDLE intents, within MAX_BUNDLE_BYTES (retries carry the
        whole document).
        """
        # Faust's aiokafka driver; its aiokafka producer knows the topic's partitions.
        producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        partitions = sorted(await producer.partitions_for(topic))
        by_partition: dict[int, list[tuple[str, DeliveryIntent | dict[str, Any]]]] = {}
        for i in intents:
            partner_id = i["ref"]["partner_id"] if isinstance(i, dict) else i.partner_id
            p = _PARTITIONER(partner_id.encode(), partitions, partitions)
            by_partition.setdefault(p, []).append((partner_id, i))
        channel = self.topics[topic]
        futures = []
        for p, group in by_partition.items():
            for k in range(0, len(group), INTENT_BUNDLE):
                for part, value in fit(group[k : k + INTENT_BUNDLE], _intents_value):
                    key = part[0][0].encode() if len(part) == 1 else None
                    futures.append(await channel.send(key=key, value=value, partition=p))
        await asyncio.gather(*futures)

    async def dead_letter(self, intent: DeliveryIntent, reason: str, detail: str) -> None:
        """Park one intent in the dead letters with the reason (replayable by its id)."""
        self.counters[f"dead_letter.{reason}"] += 1
        log.error("dead_lettered", delivery_id=intent.delivery_id, reason=reason, detail=detail)
        dead = intent.model_copy(
            update={"dead_reason": reason, "dead_at": datetime.now(UTC), "last_error": detail}
        )
        await self.send(topics.DEAD_LETTER, intent.partner_id, dead.model_dump_json().encode())

    async def reject(self, err: InvalidEvent, raw: bytes | None, event: EventT[Any] | None) -> None:
        """Record a refused event in ``relay.rejected`` with its reason; nothing is dropped.

        Whatever the record holds, the rejection is bounded (see :func:`relay.intake.rejection`).
        """
        msg = event.message if event is not None else None
        key = event.key if event is not None and isinstance(event.key, bytes) else None
        r = rejection(
            err,
            raw,
            now=datetime.now(UTC),
            key=key,
            source=(msg.topic, msg.partition, msg.offset) if msg else None,
        )
        self.counters[f"rejected.{r.reason}"] += 1
        log.warning(
            "event_rejected",
            reason=r.reason,
            message=r.message,
            event_id=r.event_id,
            document_id=r.document_id,
            raw_bytes=r.raw_bytes,
        )
        await self.send(topics.REJECTED, r.document_id, r.model_dump_json().encode())
        await self.audit(
            AuditRecord(
                kind="event.rejected",
                at=r.rejected_at,
                event_id=r.event_id,
                document_id=r.document_id,
                reason=r.reason,
                detail=r.message,
            )
        )

    async def dead_letter_raw(self, event: EventT[Any], reason: str) -> None:
        """Park a record we could not even read, with the reason, in the dead-letter topic."""
        msg = event.message
        self.counters["dead_letter.malformed"] += 1
        log.error(
            "dead_lettered",
            reason=reason,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
        )
        body = {
            "dead_reason": "malformed",
            "detail": reason,
            "source_topic": msg.topic,
            "source_partition": msg.partition,
            "source_offset": msg.offset,
            "raw": (event.value or b"").decode("utf-8", "replace")[:RAW_KEEP],
            "dead_at": datetime.now(UTC).isoformat(),
        }
        key = event.key.decode("utf-8", "replace") if isinstance(event.key, bytes) else None
        await self.send(topics.DEAD_LETTER, key, json.dumps(body, ensure_ascii=False).encode())

    async def disable_channel(self, partner_id: str, channel_id: str, reason: str) -> None:
        """Turn a channel off through the partners topic and tell the partner by email."""
        partner = self.registry.book.get(partner_id)
        channel = partner.channel(channel_id) if partner else None
        if partner is None or channel is None or channel.disabled:
            return
        now = datetime.now(UTC)
        changed = channel.model_copy(update={"disabled": True, "disabled_reason": reason})
        updated = partner.model_copy(
            update={"channels": [changed if c.id == channel_id else c for c in partner.channels]}
        )
        _, offset = await self.send(topics.PARTNERS, partner_id, updated.model_dump_json().encode())
        # Applied here before anything else, so nothing new is planned for the channel.
        await self.registry.wait_offset(offset)
        log.warning("channel_disabled", partner_id=partner_id, channel_id=channel_id, reason=reason)
        self.counters["channel.disabled"] += 1
        await self.audit(
            AuditRecord(
                kind="channel.disabled",
                at=now,
                partner_id=partner_id,
                channel_id=channel_id,
                detail=reason,
            )
        )
        to = [
            a
            for c in partner.channels
            if isinstance(c, EmailChannel) and not c.disabled and c.id != channel_id
            for a in c.to
        ]
        if to and self.mail is not None:
            notice = channel_disabled_email(
                partner, channel, to, reason=reason, mail_from=self.settings.mail_from, now=now
            )
            outcome = await self.mail.send(notice)
            log.info(
                "channel_disabled_notice",
                partner_id=partner_id,
                status=outcome.status,
                detail=outcome.detail,
            )

    def assignment(self) -> dict[str, list[int]]:
        """The partitions of the agents' topics this worker's consumer holds, by topic."""
        try:
            held = self.app.consumer.assignment()
        except Exception:  # no consumer yet during start-up
            return {}
        out: dict[str, list[int]] = {}
        for tp in sorted(held):
            if tp.topic in topics.CONSUMED:
                out.setdefault(tp.topic, []).append(tp.partition)
        return out

    @property
    def group_timing(self) -> GroupTiming:
        return self.settings.group_timing

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
        await self.add_runtime_dependency(self.rt.watchdog)
        await self.add_runtime_dependency(self.rt.group_watch)
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
