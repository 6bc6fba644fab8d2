"""Following the audit trail: which events are settled, and what happened to each delivery."""

from __future__ import annotations

from dataclasses import dataclass, field

from relay.core.models import FINAL_STATUSES, AuditRecord


@dataclass
class EventTrail:
    event_id: str
    accepted: bool = False
    rejected: AuditRecord | None = None
    duplicate: bool = False
    matched: AuditRecord | None = None
    notifications: list[AuditRecord] = field(default_factory=list)


@dataclass
class Progress:
    """Folds audit records; ``settled`` once every expected event has run its course."""

    expected: list[str]
    trails: dict[str, EventTrail] = field(default_factory=dict)
    outcomes: dict[str, AuditRecord] = field(default_factory=dict)
    #: Rejections of records so broken they carry no event id.
    anonymous_rejections: list[AuditRecord] = field(default_factory=list)

    def trail(self, event_id: str) -> EventTrail:
        return self.trails.setdefault(event_id, EventTrail(event_id))

    def add(self, record: AuditRecord) -> None:
        kind, eid = record.kind, record.event_id
        if kind == "event.rejected" and eid is None:
            self.anonymous_rejections.append(record)
            return
        if eid is None:
            return
        t = self.trail(eid)
        if kind == "event.accepted":
            t.accepted = True
        elif kind == "event.rejected":
            t.rejected = record
        elif kind == "event.duplicate":
            t.duplicate = True
        elif kind == "document.matched":
            t.matched = record
        elif kind == "notification.planned":
            t.notifications.append(record)
        elif (
            kind.startswith("delivery.") and record.delivery_id and record.status in FINAL_STATUSES
        ):
            self.outcomes[record.delivery_id] = record

    def pending(self) -> list[str]:
        """Delivery ids planned for expected events that have no final outcome yet."""
        out = []
        for eid in self.expected:
            t = self.trails.get(eid)
            if t and t.matched:
                out += [d for d in t.matched.deliveries if d not in self.outcomes]
        return out

    def unsettled_events(self) -> list[str]:
        return [
            eid
            for eid in self.expected
            if not (t := self.trails.get(eid)) or not (t.rejected or t.duplicate or t.matched)
        ]

    @property
    def settled(self) -> bool:
        return not self.unsettled_events() and not self.pending()
