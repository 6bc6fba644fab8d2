"""The trace view: every worker folds the audit topic into documents, notifications, deliveries.

It answers the API's questions (a partner's deliveries, a document's relay funnel) on any
worker, whichever partitions it owns; :class:`TraceBook` is the pure fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from relay import topics
from relay.follower import TopicFollower
from relay.logs import get_logger
from relay.models import AuditRecord, DeliveryStatus, MatchResult
from relay.settings import Settings

log = get_logger(__name__)


@dataclass
class DeliveryTrace:
    delivery_id: str
    notification_id: str | None = None
    document_id: str | None = None
    version: int | None = None
    partner_id: str | None = None
    channel_id: str | None = None
    channel_type: str | None = None
    status: DeliveryStatus = DeliveryStatus.pending
    attempts: list[AuditRecord] = field(default_factory=list)


@dataclass
class NotificationTrace:
    notification_id: str
    partner_id: str
    document_id: str
    version: int | None
    kind: str | None
    match: MatchResult | None
    deliveries: list[str]
    #: The latest acknowledgement (kind ``delivery.acked``); a repeat replaces it.
    ack: AuditRecord | None = None


@dataclass
class DocumentTrace:
    document_id: str
    events: list[AuditRecord] = field(default_factory=list)
    notifications: dict[str, NotificationTrace] = field(default_factory=dict)


@dataclass
class TraceBook:
    """The pure fold of audit records."""

    documents: dict[str, DocumentTrace] = field(default_factory=dict)
    notifications: dict[str, NotificationTrace] = field(default_factory=dict)
    deliveries: dict[str, DeliveryTrace] = field(default_factory=dict)
    by_partner: dict[str, list[str]] = field(default_factory=dict)

    def add(self, r: AuditRecord) -> None:
        if r.kind in ("event.accepted", "event.rejected", "event.duplicate", "document.matched"):
            if r.document_id:
                self._doc(r.document_id).events.append(r)
        elif r.kind == "notification.planned" and r.notification_id and r.partner_id:
            n = NotificationTrace(
                notification_id=r.notification_id,
                partner_id=r.partner_id,
                document_id=r.document_id or "",
                version=r.version,
                kind=r.detail,
                match=r.match,
                deliveries=list(r.deliveries),
            )
            self.notifications[n.notification_id] = n
            self._doc(n.document_id).notifications[n.notification_id] = n
            for did in r.deliveries:
                d = self._delivery(did)
                d.notification_id, d.document_id, d.version = (
                    n.notification_id,
                    n.document_id,
                    n.version,
                )
                d.partner_id = n.partner_id
        elif r.kind == "delivery.acked" and r.delivery_id:
            d = self._delivery(r.delivery_id)
            if d.notification_id and d.notification_id in self.notifications:
                self.notifications[d.notification_id].ack = r
        elif r.kind.startswith("delivery.") and r.delivery_id:
            d = self._delivery(r.delivery_id)
            d.partner_id = d.partner_id or r.partner_id
            d.document_id = d.document_id or r.document_id
            d.channel_id = r.channel_id or d.channel_id
            d.channel_type = r.channel_type or d.channel_type
            if r.status is not None:
                d.status = r.status
            d.attempts.append(r)

    def _doc(self, document_id: str) -> DocumentTrace:
        return self.documents.setdefault(document_id, DocumentTrace(document_id))

    def _delivery(self, delivery_id: str) -> DeliveryTrace:
        d = self.deliveries.get(delivery_id)
        if d is None:
            d = self.deliveries[delivery_id] = DeliveryTrace(delivery_id)
        if d.partner_id and delivery_id not in self.by_partner.get(d.partner_id, ()):
            self.by_partner.setdefault(d.partner_id, []).append(delivery_id)
        return d

    def partner_deliveries(self, partner_id: str) -> list[DeliveryTrace]:
        # Recompute membership: partner ids may arrive after the first attempt record.
        return [d for d in self.deliveries.values() if d.partner_id == partner_id]


class TraceView(TopicFollower):
    """Keeps a :class:`TraceBook` in step with the audit topic."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        self.book = TraceBook()
        super().__init__(settings, topics.AUDIT, self._apply, **kwargs)

    def _apply(self, msg: ConsumerRecord[bytes, bytes]) -> None:
        try:
            self.book.add(AuditRecord.model_validate_json(msg.value or b""))
        except ValidationError as e:
            log.error("audit_record_invalid", offset=msg.offset, error=str(e.errors()[0]["msg"]))
