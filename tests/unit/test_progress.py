"""Following the audit trail until every expected event has settled."""

from __future__ import annotations

from relay.core.models import AuditRecord, DeliveryStatus
from relay.core.settling import Progress
from tests.unit.factories import NOW


def rec(kind: str, **kw) -> AuditRecord:
    return AuditRecord(kind=kind, at=NOW, **kw)


def test_settles_only_when_every_planned_delivery_is_final() -> None:
    p = Progress(expected=["e1", "e2"])
    p.add(rec("event.accepted", event_id="e1"))
    p.add(rec("event.rejected", event_id="e2", reason="expired"))
    assert not p.settled
    p.add(rec("document.matched", event_id="e1", deliveries=["d1", "d2"]))
    assert p.pending() == ["d1", "d2"]
    p.add(
        rec("delivery.delivered", event_id="e1", delivery_id="d1", status=DeliveryStatus.delivered)
    )
    p.add(rec("delivery.retrying", event_id="e1", delivery_id="d2", status=DeliveryStatus.retrying))
    assert not p.settled
    p.add(rec("delivery.failed", event_id="e1", delivery_id="d2", status=DeliveryStatus.failed))
    assert p.settled


def test_events_nobody_has_seen_keep_it_unsettled() -> None:
    p = Progress(expected=["e1"])
    assert p.unsettled_events() == ["e1"]
    p.add(rec("event.duplicate", event_id="e1"))
    assert p.settled
