"""The audit trail folded into documents, notifications and deliveries; pure.

:class:`TraceBook` answers the API's questions (a partner's deliveries, a document's relay
funnel, what a partner acknowledged); every worker keeps one in step with the audit topic
(``relay/runtime/trace_view.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from relay.core.models import (
    FINAL_STATUSES,
    AuditRecord,
    DeliveryStatus,
    DocumentEvent,
    MatchResult,
)
from relay.core.stats import RateWindow

#: Statuses of deliveries that ended in the dead letters (replayable from there).
DEAD_LETTERED = frozenset({DeliveryStatus.failed, DeliveryStatus.disabled, DeliveryStatus.dead})
#: Audit kinds listed among a document's events in its trace.
DOCUMENT_EVENTS = frozenset(
    {
        "event.accepted",
        "event.rejected",
        "event.duplicate",
        "document.matched",
        "question.asked",
        "question.answered",
        "question.digest",
    }
)
#: Dead-lettered deliveries remembered for the dashboard's failures, newest kept.
FAILURES_KEPT = 200
#: Seconds of delivery outcomes kept for rates.
RATE_SPAN = 60


@dataclass(frozen=True)
class DocumentInfo:
    """What the pages show of one document version."""

    document_id: str
    version: int
    title: str
    doc_number: str
    issuer: str
    url: str
    #: The drafting unit that answers questions (the event's ``contact``), if named.
    contact_unit: str | None = None
    contact_email: str | None = None


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
    #: When the notification was planned (or, until that record arrives, the first attempt).
    planned_at: datetime | None = None
    #: The latest acknowledgement made through this delivery.
    ack: AuditRecord | None = None
    #: When it should next go: when planned, or when its retry, digest or robot slot falls
    #: due (the latest record's ``next_attempt_at``).
    due_at: datetime | None = None

    def sort_key(self) -> tuple[str, str]:
        """Newest-first order that every worker agrees on: (planned time, id)."""
        at = self.planned_at.isoformat() if self.planned_at else ""
        return at, self.delivery_id


@dataclass
class NotificationTrace:
    notification_id: str
    partner_id: str
    document_id: str
    version: int | None
    kind: str | None
    match: MatchResult | None
    deliveries: list[str]
    planned_at: datetime | None = None
    #: The latest acknowledgement (kind ``delivery.acked``), through any of its deliveries;
    #: a repeat replaces it, so the reach of a notification is counted once.
    ack: AuditRecord | None = None
    #: How many acknowledgements were made (repeats included).
    ack_count: int = 0


@dataclass
class DocumentTrace:
    document_id: str
    events: list[AuditRecord] = field(default_factory=list)
    notifications: dict[str, NotificationTrace] = field(default_factory=dict)
    #: version → what the document said, from the accepted-documents topic.
    versions: dict[int, DocumentInfo] = field(default_factory=dict)

    @property
    def reach(self) -> int:
        """Enterprises reached: over notifications, the latest acknowledgement's count."""
        return sum(
            n.ack.forwarded_to or 0 for n in self.notifications.values() if n.ack is not None
        )

    def info(self, version: int | None = None) -> DocumentInfo | None:
        """That version's info, else the latest known."""
        if version is not None and version in self.versions:
            return self.versions[version]
        return self.versions[max(self.versions)] if self.versions else None

    @property
    def updated_at(self) -> datetime | None:
        """When its latest event (accepted, rejected, matched…) or notification happened."""
        times = [e.at for e in self.events]
        times += [n.planned_at for n in self.notifications.values() if n.planned_at]
        return max(times) if times else None


@dataclass(frozen=True)
class Funnel:
    """A document's relay funnel: matched → planned → delivered → acknowledged → reached."""

    partners_matched: int
    notifications: int
    #: Notifications with at least one delivery that got through.
    notifications_delivered: int
    deliveries: int
    by_status: Counter[DeliveryStatus]
    notifications_acknowledged: int
    enterprises_reached: int


@dataclass
class TraceBook:
    """The pure fold of audit records (and accepted documents)."""

    documents: dict[str, DocumentTrace] = field(default_factory=dict)
    notifications: dict[str, NotificationTrace] = field(default_factory=dict)
    deliveries: dict[str, DeliveryTrace] = field(default_factory=dict)
    #: partner id → its delivery ids (each once).
    by_partner: dict[str, dict[str, None]] = field(default_factory=dict)
    #: How many deliveries are in each status now.
    status_counts: Counter[DeliveryStatus] = field(default_factory=Counter)
    #: delivery id → the record that dead-lettered it, oldest first, at most FAILURES_KEPT.
    failures: dict[str, AuditRecord] = field(default_factory=dict)
    #: Delivery outcomes by "channel type.status", by the records' own times.
    rates: RateWindow = field(default_factory=lambda: RateWindow(RATE_SPAN))
    #: Events refused at intake (``event.rejected``), with or without a document id.
    events_rejected: int = 0
    #: Deliveries not settled yet (pending or retrying), in the order first seen.
    unsettled: dict[str, None] = field(default_factory=dict)

    def add(self, r: AuditRecord) -> None:
        if r.kind == "event.rejected":
            self.events_rejected += 1
        if r.kind in DOCUMENT_EVENTS:
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
                planned_at=r.at,
            )
            old = self.notifications.get(n.notification_id)
            if old is not None:  # planned again (a replayed event): keep what was acknowledged
                n.ack, n.ack_count = old.ack, old.ack_count
            self.notifications[n.notification_id] = n
            self._doc(n.document_id).notifications[n.notification_id] = n
            for did in r.deliveries:
                d = self._delivery(did)
                d.notification_id, d.document_id, d.version = (
                    n.notification_id,
                    n.document_id,
                    n.version,
                )
                d.planned_at = r.at
                d.due_at = d.due_at or r.at
                self._link(d, n.partner_id)
        elif r.kind == "delivery.acked" and r.delivery_id:
            d = self._delivery(r.delivery_id)
            d.ack = r
            nid = d.notification_id or r.notification_id
            if nid and nid in self.notifications:
                n = self.notifications[nid]
                n.ack = r
                n.ack_count += 1
        elif r.kind.startswith("delivery.") and r.delivery_id:
            d = self._delivery(r.delivery_id)
            d.document_id = d.document_id or r.document_id
            d.notification_id = d.notification_id or r.notification_id
            d.version = d.version or r.version
            d.channel_id = r.channel_id or d.channel_id
            d.channel_type = r.channel_type or d.channel_type
            d.planned_at = d.planned_at or r.at
            d.due_at = r.next_attempt_at or d.due_at or r.at
            if r.partner_id:
                self._link(d, r.partner_id)
            if r.status is not None:
                self._set_status(d, r.status, r)
            d.attempts.append(r)

    def add_document(self, event: DocumentEvent) -> None:
        """Remember the title and number of an accepted document version."""
        doc = event.document
        contact = doc.contact
        self._doc(doc.id).versions.setdefault(
            doc.version,
            DocumentInfo(
                doc.id,
                doc.version,
                doc.title,
                doc.doc_number,
                doc.issuer,
                doc.url,
                contact.unit if contact else None,
                contact.email if contact else None,
            ),
        )

    def _doc(self, document_id: str) -> DocumentTrace:
        return self.documents.setdefault(document_id, DocumentTrace(document_id))

    def _delivery(self, delivery_id: str) -> DeliveryTrace:
        d = self.deliveries.get(delivery_id)
        if d is None:
            d = self.deliveries[delivery_id] = DeliveryTrace(delivery_id)
            self.status_counts[d.status] += 1
            self.unsettled[delivery_id] = None
        return d

    def _set_status(self, d: DeliveryTrace, status: DeliveryStatus, r: AuditRecord) -> None:
        """Move ``d`` to the status ``r`` recorded, keeping the counts, rates and failures."""
        self.status_counts[d.status] -= 1
        self.status_counts[status] += 1
        d.status = status
        if status in FINAL_STATUSES:
            self.unsettled.pop(d.delivery_id, None)
        else:
            self.unsettled[d.delivery_id] = None
        self.rates.add(r.at.timestamp(), f"{d.channel_type or 'unknown'}.{status}")
        if status in DEAD_LETTERED:
            self.failures.pop(d.delivery_id, None)  # moves to the newest end
            self.failures[d.delivery_id] = r
            if len(self.failures) > FAILURES_KEPT:
                del self.failures[next(iter(self.failures))]

    def _link(self, d: DeliveryTrace, partner_id: str) -> None:
        d.partner_id = d.partner_id or partner_id
        self.by_partner.setdefault(d.partner_id, {})[d.delivery_id] = None

    def partner_deliveries(self, partner_id: str) -> list[DeliveryTrace]:
        """The partner's deliveries, newest first."""
        found = [self.deliveries[i] for i in self.by_partner.get(partner_id, {})]
        return sorted(found, key=DeliveryTrace.sort_key, reverse=True)

    def funnel(self, doc: DocumentTrace, version: int | None = None) -> Funnel:
        """The funnel of one version of the document (``None``: every version together).

        Each version has its own: a revision goes to its own recipients, and counting v1's
        deliveries and acknowledgements in v2's would claim a reach v2 never had.
        """
        return self._funnel(
            [n for n in doc.notifications.values() if version is None or n.version == version]
        )

    def overall(self) -> Funnel:
        """Every notification of every document: what the relay has done, in one funnel."""
        return self._funnel(list(self.notifications.values()))

    def _funnel(self, notifications: list[NotificationTrace]) -> Funnel:
        statuses: Counter[DeliveryStatus] = Counter()
        deliveries = delivered = 0
        for n in notifications:
            deliveries += len(n.deliveries)
            got_through = False
            for i in n.deliveries:
                d = self.deliveries.get(i)
                if d is not None:
                    statuses[d.status] += 1
                    got_through = got_through or d.status == DeliveryStatus.delivered
            delivered += got_through
        return Funnel(
            partners_matched=len({n.partner_id for n in notifications}),
            notifications=len(notifications),
            notifications_delivered=delivered,
            deliveries=deliveries,
            by_status=statuses,
            notifications_acknowledged=sum(n.ack is not None for n in notifications),
            enterprises_reached=sum(
                n.ack.forwarded_to or 0 for n in notifications if n.ack is not None
            ),
        )

    def version_funnels(self, doc: DocumentTrace) -> dict[int, Funnel]:
        """Each known version's own funnel, oldest version first."""
        versions = set(doc.versions)
        versions |= {e.version for e in doc.events if e.version and e.kind != "event.rejected"}
        versions |= {n.version for n in doc.notifications.values() if n.version is not None}
        return {v: self.funnel(doc, v) for v in sorted(versions)}

    def recent_documents(self, limit: int) -> list[DocumentTrace]:
        """Documents by their latest activity, newest first; ones with none yet lead."""

        def key(doc: DocumentTrace) -> tuple[bool, float, str]:
            at = doc.updated_at
            return at is None, at.timestamp() if at else 0.0, doc.document_id

        return sorted(self.documents.values(), key=key, reverse=True)[:limit]

    def oldest_due(self, now: datetime) -> float:
        """Seconds the longest-waiting unsettled delivery has been due (0 if none is): a
        delivery held for a digest, a robot's slot or a later retry is not due yet."""
        oldest = 0.0
        for delivery_id in self.unsettled:
            due = self.deliveries[delivery_id].due_at
            if due is not None:
                oldest = max(oldest, (now - due).total_seconds())
        return oldest

    def recent_failures(self, limit: int) -> list[tuple[DeliveryTrace, AuditRecord]]:
        """Deliveries that are dead-lettered now, with the record that put them there.

        Newest first; a delivery that got through since (a replay) is left out.
        """
        out: list[tuple[DeliveryTrace, AuditRecord]] = []
        for did in reversed(self.failures):
            d = self.deliveries[did]
            if d.status in DEAD_LETTERED:
                out.append((d, self.failures[did]))
                if len(out) >= limit:
                    break
        return out
