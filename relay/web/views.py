"""Turning the trace book into API answers: deliveries, pages of them, a document's funnel."""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter

from relay.core.models import DeliveryStatus
from relay.core.trace import DeliveryTrace, DocumentTrace, Funnel, TraceBook
from relay.runtime.registry import PartnerBook
from relay.web.errors import ApiError
from relay.web.schemas import (
    AckOut,
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    DocumentTraceOut,
    NotificationOut,
    TraceEvent,
    TraceTotals,
    VersionFunnel,
)


def delivery_out(book: TraceBook, d: DeliveryTrace) -> DeliveryOut:
    n = book.notifications.get(d.notification_id or "")
    doc = book.documents.get(d.document_id or "")
    info = doc.info(d.version) if doc else None
    return DeliveryOut(
        delivery_id=d.delivery_id,
        notification_id=d.notification_id,
        partner_id=d.partner_id,
        document_id=d.document_id,
        version=d.version,
        title=info.title if info else None,
        channel_id=d.channel_id,
        channel_type=d.channel_type,
        status=d.status,
        planned_at=d.planned_at,
        attempts=[AttemptOut.of(a) for a in d.attempts],
        acknowledgement=AckOut.of(n.ack) if n is not None and n.ack is not None else None,
    )


def encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, delivery_id = json.loads(raw)
        if not isinstance(at, str) or not isinstance(delivery_id, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as e:
        raise ApiError(
            422, "invalid_request", "cursor: not a cursor this API gave out (use next_cursor)"
        ) from e
    return at, delivery_id


def delivery_page(book: TraceBook, partner_id: str, limit: int, cursor: str | None) -> DeliveryPage:
    """The partner's deliveries, newest first, ``limit`` at a time."""
    found = book.partner_deliveries(partner_id)
    if cursor is not None:
        after = decode_cursor(cursor)
        found = [d for d in found if d.sort_key() < after]
    page = found[:limit]
    more = len(found) > limit
    return DeliveryPage(
        items=[delivery_out(book, d) for d in page],
        next_cursor=encode_cursor(page[-1].sort_key()) if more and page else None,
    )


def totals_out(f: Funnel) -> TraceTotals:
    return TraceTotals(
        partners_matched=f.partners_matched,
        notifications=f.notifications,
        notifications_delivered=f.notifications_delivered,
        deliveries=f.deliveries,
        deliveries_by_status={s.value: f.by_status[s] for s in DeliveryStatus},
        notifications_acknowledged=f.notifications_acknowledged,
        enterprises_reached=f.enterprises_reached,
    )


def version_funnels(book: TraceBook, doc: DocumentTrace) -> list[VersionFunnel]:
    return [
        VersionFunnel(version=v, funnel=totals_out(f)) for v, f in book.version_funnels(doc).items()
    ]


def trace_out(book: TraceBook, doc: DocumentTrace, partners: PartnerBook) -> DocumentTraceOut:
    """A document's relay funnel: events, who was matched, each delivery, what was acked."""
    notifications: list[NotificationOut] = []
    statuses: Counter[str] = Counter()
    deliveries = 0
    ordered = sorted(doc.notifications.values(), key=lambda n: (n.version or 0, n.partner_id))
    for n in ordered:
        partner = partners.get(n.partner_id)
        outs = [
            delivery_out(book, book.deliveries[i]) for i in n.deliveries if i in book.deliveries
        ]
        for o in outs:
            statuses[o.status.value] += 1
        deliveries += len(n.deliveries)
        notifications.append(
            NotificationOut(
                notification_id=n.notification_id,
                partner_id=n.partner_id,
                partner_name=partner.name if partner else None,
                version=n.version,
                type=n.kind,
                planned_at=n.planned_at,
                match=n.match,
                deliveries=outs,
                acknowledgement=AckOut.of(n.ack) if n.ack is not None else None,
                acknowledgements=n.ack_count,
            )
        )
    info = doc.info()
    return DocumentTraceOut(
        document_id=doc.document_id,
        title=info.title if info else None,
        doc_number=info.doc_number if info else None,
        versions=sorted(doc.versions),
        events=[
            TraceEvent(
                kind=e.kind,
                at=e.at,
                event_id=e.event_id,
                version=e.version,
                detail=e.detail,
                reason=e.reason,
            )
            for e in doc.events
        ],
        notifications=notifications,
        totals=TraceTotals(
            partners_matched=len({n.partner_id for n in ordered}),
            notifications=len(ordered),
            deliveries=deliveries,
            deliveries_by_status=dict(statuses),
            notifications_acknowledged=sum(n.ack is not None for n in ordered),
            enterprises_reached=doc.reach,
        ),
        funnels=version_funnels(book, doc),
    )
