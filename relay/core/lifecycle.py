"""A policy's life after publication: expiry reminders and catch-up (pure).

The match agent runs these on a calendar tick, in the partition that holds the document's
state (relay.agents.documents), and stores the state they return. Every notification has a
deterministic id, so a plan made again after a crash or a rebalance is the same plan, and
the delivery ledger never sends a delivery twice.

- **Expiry reminders**: from ``days`` days before a normative document's ``expires_on``
  until that day, every partner it was relayed to gets one ``policy.expiring`` notice (id
  from the document, the expiry date and the partner: a revision that moves the expiry date
  is reminded of again, a repeat of the same reminder never).
- **Catch-up**: a partner with ``catch_up: true`` gets every still-valid document (not
  repealed, not expired) that matches it now and that it never received, once, under the
  ordinary notification id of (document version, partner), marked ``catch_up``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from relay.core import ids
from relay.core.models import Document, MatchResult, NoticeType, Notification, Partner
from relay.core.models.records import PlannedDelivery
from relay.core.planning import DocumentState


@dataclass
class LifePlan:
    """What a calendar tick decided for one document: notifications and the new state."""

    event_id: str
    notifications: list[Notification] = field(default_factory=list)
    state: DocumentState | None = None


def still_valid(state: DocumentState, today: date) -> bool:
    """Not repealed and not past its expiry date (a document without one stays valid)."""
    return not state.repealed and (state.expires_on is None or state.expires_on >= today)


def expired(n: Notification, today: date) -> bool:
    """A notice of a policy past its expiry date is not sent any more (a first attempt, a
    retry or a replayed dead letter alike): the relay stops relaying a document once it has
    expired. A repeal is still sent: it tells prior recipients to stop applying it."""
    expires = n.document.expires_on
    return n.type is not NoticeType.repealed and expires is not None and expires < today


def reminder_due(state: DocumentState, today: date, days: int) -> bool:
    """Whether the recipients of this document are to be reminded of its expiry today."""
    expires = state.expires_on
    return (
        state.normative
        and expires is not None
        and state.source is not None
        and not state.repealed
        and state.reminded != expires.isoformat()
        and expires - timedelta(days=days) <= today <= expires
    )


def reminder_event_id(document_id: str, expires_on: date) -> str:
    """The audit trail's event id of a document's expiry reminders."""
    return f"expiring:{document_id}:{expires_on.isoformat()}"


def catch_up_event_id(document_id: str, version: int) -> str:
    """The audit trail's event id of a document version's catch-up notices."""
    return f"catch-up:{document_id}:v{version}"


def _deliveries(notification_id: str, partner: Partner) -> list[PlannedDelivery]:
    return [
        PlannedDelivery(
            delivery_id=ids.delivery_id(notification_id, ch.id),
            channel_id=ch.id,
            channel_type=ch.type,
        )
        for ch in partner.channels
        if not ch.disabled
    ]


def plan_reminders(
    state: DocumentState,
    document: Document,
    *,
    lookup: Callable[[str], Partner | None],
    judge: Callable[[Document, Partner], MatchResult],
    now: datetime,
) -> LifePlan:
    """One ``policy.expiring`` notification per recipient that still exists and is not
    paused; the state remembers the expiry date reminded of."""
    assert document.expires_on is not None
    expires = document.expires_on.isoformat()
    plan = LifePlan(event_id=reminder_event_id(document.id, document.expires_on))
    for partner_id in sorted(state.recipients):
        partner = lookup(partner_id)
        if partner is None or partner.paused:
            continue
        nid = ids.reminder_notification_id(document.id, expires, partner_id)
        plan.notifications.append(
            Notification(
                notification_id=nid,
                type=NoticeType.expiring,
                event_id=plan.event_id,
                document=document,
                partner_id=partner.id,
                partner_name=partner.name,
                partner_kind=partner.kind,
                match=judge(document, partner),
                deliveries=_deliveries(nid, partner),
                previous_version=state.recipients[partner_id],
                planned_at=now,
            )
        )
    plan.state = state.model_copy(update={"reminded": expires})
    return plan


def plan_catch_up(
    state: DocumentState,
    document: Document,
    partners: Iterable[Partner],
    *,
    judge: Callable[[Document, Partner], MatchResult],
    today: date,
    now: datetime,
) -> LifePlan:
    """Catch-up notifications of a still-valid document for the given partners that have
    ``catch_up`` on, match it now and never received it; they join its recipients."""
    plan = LifePlan(event_id=catch_up_event_id(document.id, document.version))
    if not still_valid(state, today) or (document.id, document.version) != (
        state.document_id,
        state.version,
    ):
        return plan
    recipients = dict(state.recipients)
    for partner in sorted(partners, key=lambda p: p.id):
        if not partner.catch_up or partner.paused or partner.id in recipients:
            continue
        result = judge(document, partner)
        if not result.matched:
            continue
        nid = ids.notification_id(document.id, document.version, partner.id)
        plan.notifications.append(
            Notification(
                notification_id=nid,
                type=NoticeType.relayed,
                event_id=plan.event_id,
                document=document,
                partner_id=partner.id,
                partner_name=partner.name,
                partner_kind=partner.kind,
                match=result,
                deliveries=_deliveries(nid, partner),
                catch_up=True,
                planned_at=now,
            )
        )
        recipients[partner.id] = document.version
    if plan.notifications:
        plan.state = state.model_copy(update={"recipients": recipients})
    return plan
