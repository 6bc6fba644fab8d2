"""The runtime of a worker: its Faust app, topics and tables, and what the agents call.

Built once from the settings by the worker's start-up (``relay/worker.py``), which also
installs the agents and the HTTP application on it. Producing, the audit trail, refused
events and dead letters, and turning channels off each have a module of their own.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from faust.types import TopicT
from mode import Service

from relay.adapters.chatbots import ChatSender
from relay.adapters.email import EmailSender
from relay.adapters.http import trust_store
from relay.adapters.webhook import WebhookSender
from relay.core import pacing, topics
from relay.core.intake import Check, default_checks
from relay.core.models import DeliveryStatus
from relay.core.retry import RateLimiter, RetryPolicy
from relay.core.settings import GroupTiming, Profile, Settings
from relay.runtime.audit import AuditLog
from relay.runtime.calendar import PendingCatchUps
from relay.runtime.channels import ChannelSwitch
from relay.runtime.documents import AcceptedDocuments
from relay.runtime.group_watch import GroupWatch
from relay.runtime.ledger import LookupTable, batched_table, lookup_table, table_items
from relay.runtime.metrics import GaugeValue, Metrics
from relay.runtime.parking import Parking
from relay.runtime.producing import Producer
from relay.runtime.questions import QuestionView
from relay.runtime.registry import Registry
from relay.runtime.trace_view import TraceView
from relay.runtime.watchdog import Watchdog


def faust_datadir(settings: Settings) -> Path:
    return (settings.data_dir / "faust" / settings.app_id).resolve()


def faust_settings(settings: Settings) -> dict[str, Any]:
    """Faust's own settings for a profile (embedded broker in dev, Apache Kafka in production)."""
    dev = settings.profile == Profile.dev
    timing = settings.group_timing
    return {
        "broker": settings.broker,
        "store": str(settings.table_store),
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


#: The statuses of a delivery in the dead letters (replayable), as the dashboard counts them.
DEAD_LETTER_STATUSES = ("failed", "disabled", "dead")


class Runtime:
    """The app, its topics and tables, and the adapters the agents call."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: The policy calendar (expiry, reminders, digests); moved only in tests and dev.
        self.clock = settings.clock
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
        self.documents = self._table("documents")
        # delivery id → LedgerEntry: its state and every attempt. Written by the delivery
        # agents, co-partitioned with the delivery topics (all keyed by partner id), a
        # batch's entries in one changelog record per partition (see relay.runtime.ledger).
        self.ledger = batched_table(self.app, "ledger", settings.topic_partitions)
        # delivery id → a parked retry ({"p", "due", "key", "intent"}) until it is due.
        self.retries = self._table("retries")
        # "partner/channel" → the channel's current failure streak.
        self.channel_health = self._table("channel-health")
        # "partner/channel" → a group robot's pacing window (relay.core.pacing), written
        # before each message goes.
        self.bot_windows = batched_table(self.app, "bot-windows", settings.topic_partitions)
        # "partner/channel/day" → a day's digest while it waits (relay.core.digest), in
        # the partner's partition of the delivery topics, like the ledger.
        self.digests = batched_table(self.app, "digests", settings.topic_partitions)
        # drafting unit's address → how far its daily email of questions told it
        # (relay.core.question_digest), in the partition of the accepted-documents topic
        # its address hashes to.
        self.question_digests = batched_table(
            self.app, "question-digests", settings.topic_partitions
        )
        self.limiter = RateLimiter(settings.channel_rate)
        self.retry_policy = RetryPolicy(settings.retry_schedule, floor=settings.retry_floor)
        self.counters: Counter[str] = Counter()
        self.registry = Registry(settings)
        #: Partners with catch_up on, waiting to be looked for in each documents partition.
        self.catch_ups = PendingCatchUps(
            topics.spec(topics.ACCEPTED).partitions or settings.topic_partitions
        )
        self.registry.listeners.append(self.catch_ups.heard)
        self.accepted = AcceptedDocuments(settings)
        self.trace = TraceView(settings)
        self.accepted.listeners.append(self.trace.add_document)
        #: Every question and answer (item 6), read whole: the FAQ of any document.
        self.questions = QuestionView(settings)
        tls = trust_store(settings.extra_ca_file)
        self.webhooks = WebhookSender(
            timeout=settings.webhook_timeout,
            allow_private=settings.allow_private_webhooks,
            ssl_context=tls,
        )
        self.chat = ChatSender(
            timeout=settings.webhook_timeout,
            allow_private=settings.allow_private_webhooks,
            ssl_context=tls,
            production=settings.profile == Profile.production,
            route=settings.bot_sink_url,
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
        self.out = Producer(self.app, self.topics)
        self.audit = AuditLog(self.out, self.counters)
        self.parking = Parking(self.out, self.audit, self.counters)
        self.channels = ChannelSwitch(
            registry=self.registry,
            out=self.out,
            audit=self.audit,
            mail=self.mail,
            mail_from=settings.mail_from,
            counters=self.counters,
        )
        self.watchdog = Watchdog(self)
        self.group_watch = GroupWatch(self)
        #: This worker's consumer lag by topic, as last measured for the dashboard or a
        #: scrape of /metrics (None until then, or while unavailable).
        self.consumer_lag: dict[str, float] | None = None
        self.metrics = Metrics(self.counters, self._gauges)
        #: Extra checks on every event (the code catalogues).
        self.checks: tuple[Check, ...] = default_checks()
        self.started = time.time()
        services = _Services(self)

        async def _start_services() -> None:
            await self.app.add_runtime_dependency(services)

        self.app.task(_start_services)

    def _table(self, name: str) -> LookupTable:
        return lookup_table(self.app, name, self.settings.topic_partitions)

    def topic(self, name: str) -> TopicT:
        return self.topics[name]

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

    def _gauges(self) -> dict[str, GaugeValue]:
        book = self.trace.book
        statuses = {s.value: float(book.status_counts[s]) for s in DeliveryStatus}
        now = time.time()
        throttled = sum(
            1
            for _, stored in table_items(self.bot_windows)
            if stored and pacing.Window.of(stored).blocked_until > now
        )
        return {
            "relay_partners": len(self.registry.book.partners),
            "relay_group_workers": len(self.group_watch.live()),
            "relay_group_partition_problems": len(self.group_watch.findings),
            "relay_worker_ready": float(self.ready),
            "relay_consumer_lag": dict(self.consumer_lag or {}),
            "relay_deliveries": statuses,
            "relay_dead_letters": sum(statuses[s] for s in DEAD_LETTER_STATUSES),
            "relay_oldest_pending_delivery_seconds": book.oldest_due(datetime.now(UTC)),
            "relay_bot_channels_throttled": float(throttled),
        }

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
        await self.add_runtime_dependency(self.rt.accepted)
        await self.add_runtime_dependency(self.rt.questions)
        await self.add_runtime_dependency(self.rt.watchdog)
        await self.add_runtime_dependency(self.rt.group_watch)
        await self.rt.webhooks.start()
        await self.rt.chat.start()

    async def on_stop(self) -> None:
        await self.rt.webhooks.close()
        await self.rt.chat.close()
        if self.rt.mail is not None:
            await self.rt.mail.close()
