"""The trace fold: deliveries per partner, acknowledgements and reach, pages of deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relay.core.models import AuditRecord, DeliveryStatus
from relay.core.trace import TraceBook
from relay.runtime.registry import PartnerBook
from relay.web.errors import ApiError
from relay.web.views import delivery_page, trace_out
from tests.unit import factories

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def planned(book: TraceBook, doc: str, partner: str, n: int, *, at: datetime = T0) -> list[str]:
    """Plan notification ``ntf_<doc>_<partner>`` with an email and a webhook delivery."""
    nid = f"ntf_{doc}_{partner}"
    dids = [f"dlv_{doc}_{partner}_{ch}_{n}" for ch in ("email", "webhook")]
    book.add(
        AuditRecord(
            kind="notification.planned",
            at=at,
            document_id=doc,
            version=1,
            partner_id=partner,
            notification_id=nid,
            deliveries=dids,
            detail="policy.relayed",
        )
    )
    return dids


def attempt(book: TraceBook, did: str, status: DeliveryStatus, at: datetime = T0) -> None:
    book.add(
        AuditRecord(
            kind=f"delivery.{status}",
            at=at,
            delivery_id=did,
            status=status,
            attempt=1,
            channel_type="webhook" if "webhook" in did else "email",
        )
    )


def ack(book: TraceBook, did: str, forwarded_to: int, note: str | None = None) -> None:
    d = book.deliveries[did]
    book.add(
        AuditRecord(
            kind="delivery.acked",
            at=T0,
            delivery_id=did,
            notification_id=d.notification_id,
            partner_id=d.partner_id,
            document_id=d.document_id,
            forwarded_to=forwarded_to,
            note=note,
        )
    )


def test_a_notification_acknowledged_through_both_channels_counts_once() -> None:
    book = TraceBook()
    email, webhook = planned(book, "D1", "p-1", 1)
    (other, _) = planned(book, "D1", "p-2", 1)
    ack(book, email, 30)
    ack(book, webhook, 40, "updated")  # the same notice, through its webhook
    ack(book, other, 5)
    doc = book.documents["D1"]
    assert doc.reach == 45
    n = book.notifications["ntf_D1_p-1"]
    assert n.ack is not None and n.ack.forwarded_to == 40 and n.ack.note == "updated"
    assert n.ack_count == 2


def test_acknowledging_again_replaces_the_count() -> None:
    book = TraceBook()
    email, _ = planned(book, "D2", "p-1", 1)
    ack(book, email, 12)
    ack(book, email, 7)
    assert book.documents["D2"].reach == 7


def test_attempts_arriving_before_the_plan_still_belong_to_the_partner() -> None:
    book = TraceBook()
    book.add(
        AuditRecord(
            kind="delivery.delivered",
            at=T0,
            delivery_id="dlv_x",
            partner_id="p-9",
            document_id="D3",
            status=DeliveryStatus.delivered,
        )
    )
    planned(book, "D3", "p-9", 1)
    assert "dlv_x" in [d.delivery_id for d in book.partner_deliveries("p-9")]
    assert book.deliveries["dlv_x"].status is DeliveryStatus.delivered
    assert book.partner_deliveries("nobody") == []


def test_deliveries_page_newest_first_with_a_cursor() -> None:
    book = TraceBook()
    for i in range(5):
        planned(book, f"D{i}", "p-1", i, at=T0 + timedelta(minutes=i))
    attempt(book, "dlv_D4_p-1_webhook_4", DeliveryStatus.delivered)
    first = delivery_page(book, "p-1", 4, None)
    assert [d.document_id for d in first.items] == ["D4", "D4", "D3", "D3"]
    assert first.items[0].attempts[0].status is DeliveryStatus.delivered
    assert first.next_cursor is not None
    rest = delivery_page(book, "p-1", 100, first.next_cursor)
    assert [d.document_id for d in rest.items] == ["D2", "D2", "D1", "D1", "D0", "D0"]
    assert rest.next_cursor is None
    seen = [d.delivery_id for d in first.items + rest.items]
    assert len(seen) == len(set(seen)) == 10


def test_a_forged_cursor_is_a_named_422() -> None:
    with pytest.raises(ApiError) as e:
        delivery_page(TraceBook(), "p-1", 10, "not-a-cursor!")
    assert e.value.status == 422 and e.value.message.startswith("cursor:")


def test_trace_totals_match_what_partners_acknowledged() -> None:
    book = TraceBook()
    book.add_document(factories.event_model(id="D5"))
    a_email, a_hook = planned(book, "D5", "p-1", 1)
    b_email, b_hook = planned(book, "D5", "p-2", 1)
    for did in (a_email, a_hook, b_email):
        attempt(book, did, DeliveryStatus.delivered)
    attempt(book, b_hook, DeliveryStatus.failed)
    ack(book, a_email, 10)
    ack(book, a_hook, 11)
    partners = PartnerBook()
    partners.apply("p-1", factories.partner("p-1").model_dump_json().encode())
    out = trace_out(book, book.documents["D5"], partners)
    assert out.title == "测试政策"
    assert out.totals.partners_matched == 2
    assert out.totals.deliveries == 4
    assert out.totals.deliveries_by_status == {"delivered": 3, "failed": 1}
    assert out.totals.notifications_acknowledged == 1
    assert out.totals.enterprises_reached == 11
    by_partner = {n.partner_id: n for n in out.notifications}
    assert by_partner["p-1"].partner_name == "p-1（测试）"
    assert by_partner["p-2"].partner_name is None
    assert by_partner["p-1"].acknowledgement is not None
    assert by_partner["p-1"].acknowledgement.forwarded_to == 11


def test_oldest_due_counts_only_unsettled_deliveries_that_are_due() -> None:
    book = TraceBook()
    email, hook = planned(book, "D1", "p1", 1)
    assert book.oldest_due(T0 + timedelta(seconds=90)) == 90.0  # both planned at T0
    attempt(book, email, DeliveryStatus.delivered, at=T0 + timedelta(seconds=1))
    # The webhook failed and is held for a retry five minutes on: not due before then.
    book.add(
        AuditRecord(
            kind="delivery.retrying",
            at=T0 + timedelta(seconds=2),
            delivery_id=hook,
            status=DeliveryStatus.retrying,
            attempt=1,
            channel_type="webhook",
            next_attempt_at=T0 + timedelta(seconds=302),
        )
    )
    assert book.oldest_due(T0 + timedelta(seconds=100)) == 0.0
    assert book.oldest_due(T0 + timedelta(seconds=362)) == 60.0
    attempt(book, hook, DeliveryStatus.dead, at=T0 + timedelta(seconds=400))
    assert book.unsettled == {}
    assert book.oldest_due(T0 + timedelta(hours=5)) == 0.0
