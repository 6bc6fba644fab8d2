"""Deciding what an accepted event means: who gets a notification, over which channels.

Pure: the match agent feeds it the document's prior state and the current matches, and
stores the new state it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import BaseModel, Field

from relay.core import ids
from relay.core.changes import compute_changes
from relay.core.errors import InvalidEvent
from relay.core.models import (
    Document,
    DocumentEvent,
    DocumentSource,
    EventType,
    FieldChange,
    MatchResult,
    NoticeType,
    Notification,
    Partner,
    PlannedDelivery,
)

#: How many recent event ids of one document are remembered for de-duplication.
EVENT_MEMORY = 256

NOTICE_TYPES = {
    EventType.published: NoticeType.relayed,
    EventType.revised: NoticeType.revised,
    EventType.repealed: NoticeType.repealed,
}


class DocumentState(BaseModel):
    """What the relay remembers about one document id."""

    document_id: str
    version: int
    repealed: bool = False
    event_ids: list[str] = Field(default_factory=list)
    #: partner id → the last version that partner was notified of.
    recipients: dict[str, int] = Field(default_factory=dict)
    #: What the calendar needs (relay.core.lifecycle): the current version's validity and
    #: its record in the accepted-documents topic, so reminders and catch-ups can refer to it.
    expires_on: date | None = None
    normative: bool = False
    source: DocumentSource | None = None
    #: The current version itself: a reminder or a catch-up may come years after the
    #: accepted-documents topic's retention let its record go.
    document: Document | None = None
    #: The expiry date the recipients were last reminded of (ISO date).
    reminded: str | None = None


@dataclass
class Plan:
    """The outcome of one accepted event."""

    duplicate: bool = False
    notifications: list[Notification] = field(default_factory=list)
    state: DocumentState | None = None
    #: ``plan_event(..., lazy=True)``: the notifications, by partner id, each built as it is
    #: read, so a large fan-out's first intents can go out before the last are planned
    #: (``notifications`` then stays empty).
    stream: Iterator[Notification] = field(default_factory=lambda: iter(()))


def check_sequence(state: DocumentState | None, event: DocumentEvent) -> bool:
    """Whether ``event`` is a repeat (True); raise :class:`InvalidEvent` if out of sequence."""
    doc = event.document
    if state is None:
        # Nobody received an original, so there is nothing a revision or repeal refers to.
        if event.type == EventType.revised:
            raise InvalidEvent(
                "unknown_document",
                f"document {doc.id} was never published through the relay, so no partner "
                "has a version to revise: publish it as document.published (any version) "
                "to relay it",
                field="document.id",
            )
        if event.type == EventType.repealed:
            raise InvalidEvent(
                "unknown_document",
                f"document {doc.id} was never published through the relay, so no partner "
                "has a version to repeal: nothing needs doing (to relay the document, "
                "publish it as document.published first)",
                field="document.id",
            )
        return False
    if event.event_id in state.event_ids:
        return True
    if state.repealed:
        raise InvalidEvent(
            "repealed",
            f"document {doc.id} was repealed; publish it under a new id",
            field="document.id",
        )
    if event.type == EventType.repealed:
        if doc.version < state.version:
            raise InvalidEvent(
                "stale_version",
                f"repeal names version {doc.version} of {doc.id}, but version "
                f"{state.version} is current",
                field="document.version",
            )
        return False
    if doc.version <= state.version:
        raise InvalidEvent(
            "stale_version",
            f"version {doc.version} of {doc.id} is not newer than the current version "
            f"{state.version}; a revision must raise the version",
            field="document.version",
        )
    return False


def plan_event(
    event: DocumentEvent,
    state: DocumentState | None,
    matches: list[tuple[Partner, MatchResult]],
    *,
    lookup: Callable[[str], Partner | None],
    judge: Callable[[Document, Partner], MatchResult],
    now: datetime,
    previous: Document | None = None,
    source: DocumentSource | None = None,
    lazy: bool = False,
) -> Plan:
    """Plan the notifications for one event; raises :class:`InvalidEvent` when out of sequence.

    ``previous`` is the current version (the one at ``state.source``), which a revision's
    notices are compared with; ``source`` is where this event was accepted.
    """
    if check_sequence(state, event):
        return Plan(duplicate=True, state=state)
    doc = event.document
    notice = NOTICE_TYPES[event.type]
    prior = dict(state.recipients) if state else {}
    changes: list[FieldChange] = []
    changes_from: int | None = None
    if event.type == EventType.revised and previous is not None and previous.id == doc.id:
        changes, changes_from = compute_changes(previous, doc), previous.version

    targets: dict[str, tuple[Partner, MatchResult, bool]] = {}
    if event.type != EventType.repealed:
        for partner, result in matches:
            targets[partner.id] = (partner, result, False)
    # Revisions and repeals reach everyone who got an earlier version, even if the new
    # scope no longer covers them: they may have forwarded the old text.
    for partner_id in prior:
        if partner_id in targets:
            continue
        known = lookup(partner_id)
        if known is None or known.paused:
            continue
        targets[partner_id] = (known, judge(doc, known), True)

    def build() -> Iterator[Notification]:
        for partner_id in sorted(targets):
            yield notify(partner_id)

    def notify(partner_id: str) -> Notification:
        partner, result, prior_only = targets[partner_id]
        # A repeal names a version already notified: its own ids (see ids.notification_id).
        own = notice.value if notice is NoticeType.repealed else ""
        nid = ids.notification_id(doc.id, doc.version, partner_id, own)
        deliveries = [
            PlannedDelivery(
                delivery_id=ids.delivery_id(nid, ch.id), channel_id=ch.id, channel_type=ch.type
            )
            for ch in partner.channels
            if not ch.disabled
        ]
        return Notification(
            notification_id=nid,
            type=notice,
            event_id=event.event_id,
            document=doc,
            partner_id=partner.id,
            partner_name=partner.name,
            partner_kind=partner.kind,
            match=result,
            deliveries=deliveries,
            previous_version=prior.get(partner_id),
            prior_recipient_only=prior_only and event.type != EventType.repealed,
            changes_computed=changes,
            changes_from=changes_from,
            planned_at=now,
        )

    recipients = dict(prior)
    for partner_id in sorted(targets):  # one notification per target
        recipients[partner_id] = doc.version
    new_state = DocumentState(
        document_id=doc.id,
        version=max(doc.version, state.version if state else 0),
        repealed=event.type == EventType.repealed,
        event_ids=((state.event_ids if state else []) + [event.event_id])[-EVENT_MEMORY:],
        recipients=recipients,
        expires_on=doc.expires_on,
        normative=doc.normative,
        source=source if source is not None else (state.source if state else None),
        document=state.document if state else None,
        reminded=state.reminded if state else None,
    )
    if lazy:
        return Plan(stream=build(), state=new_state)
    return Plan(notifications=list(build()), state=new_state)
