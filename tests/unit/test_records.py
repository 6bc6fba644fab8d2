"""Thin delivery intents (a notification by reference) and batched audit values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from relay.core.models import (
    INTENT_JSON,
    AuditRecord,
    DeliveryIntent,
    DeliveryStatus,
    DocumentSource,
    FieldChange,
    IntentBundle,
    NoticeType,
    NotificationRef,
    audit_records,
    audit_value,
    delivery_intents,
    first_attempt,
    first_attempt_ref,
    fit,
)
from relay.core.models.limits import MAX_BUNDLE_BYTES
from tests.unit.factories import make_document, make_notification

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SOURCE = DocumentSource(partition=2, offset=41)


def record(i: int, doc: str = "QE5320000-2023-01") -> AuditRecord:
    return AuditRecord(
        kind="delivery.delivered",
        at=T0,
        document_id=doc,
        delivery_id=f"dlv_{i}",
        status=DeliveryStatus.delivered,
        attempt=1,
        http_status=204,
    )


def test_one_audit_record_is_written_as_itself() -> None:
    r = record(1)
    value = audit_value([r])
    assert value == r.model_dump_json().encode()
    assert audit_records(value) == [r]


def test_many_audit_records_travel_in_one_value_in_order() -> None:
    rs = [record(i) for i in range(300)]
    value = audit_value(rs)
    assert value.startswith(b'{"records":[')
    assert audit_records(value) == rs


def test_an_audit_value_that_is_neither_fails_to_parse() -> None:
    with pytest.raises(ValidationError):
        audit_records(b'{"records": [{"kind": "x"}]}')  # a record without its time
    with pytest.raises(ValidationError):
        audit_records(b"not json")


def test_a_reference_completed_with_its_document_is_the_whole_notification() -> None:
    n, _, _ = make_notification()
    ref = NotificationRef.of(n, SOURCE)
    assert (ref.document_id, ref.version) == (n.document.id, n.document.version)
    again = NotificationRef.model_validate_json(ref.model_dump_json())
    assert again == ref
    assert again.with_document(n.document) == n


def test_a_reference_refuses_another_documents_version() -> None:
    n, _, _ = make_notification()
    ref = NotificationRef.of(n, SOURCE)
    other = make_document(version=n.document.version + 1)
    with pytest.raises(ValueError, match="not the referenced"):
        ref.with_document(other)


def intents(summary: str) -> tuple[DeliveryIntent, DeliveryIntent]:
    """The whole and the thin intent of one delivery of a document with this summary."""
    n, _, _ = make_notification(summary=summary)
    d = n.deliveries[0]
    common = {"delivery_id": d.delivery_id, "channel_id": d.channel_id, "channel_type": "email"}
    whole = DeliveryIntent.model_validate({**common, "notification": n})
    thin = DeliveryIntent.model_validate({**common, "ref": NotificationRef.of(n, SOURCE)})
    return whole, thin


def test_a_thin_intent_does_not_grow_with_the_document_and_round_trips() -> None:
    short_whole, short_thin = intents("短摘要")
    long_whole, long_thin = intents("推进政策接力。" * 400)
    assert len(long_whole.model_dump_json()) > len(short_whole.model_dump_json()) + 2000
    assert len(long_thin.model_dump_json()) == len(short_thin.model_dump_json())
    assert "推进政策接力" not in long_thin.model_dump_json()

    parsed = DeliveryIntent.model_validate_json(long_thin.model_dump_json())
    assert parsed.notification is None and parsed.ref is not None
    assert parsed.partner_id == long_whole.partner_id
    assert parsed.document_id == long_whole.document_id
    with pytest.raises(ValueError, match="only a reference"):
        parsed.full  # noqa: B018
    assert parsed.ref.with_document(long_whole.full.document) == long_whole.full


def test_an_intent_needs_exactly_one_of_notification_and_ref() -> None:
    n, _, _ = make_notification()
    d = n.deliveries[0]
    base = {"delivery_id": d.delivery_id, "channel_id": d.channel_id, "channel_type": "email"}
    with pytest.raises(ValidationError, match="exactly one"):
        DeliveryIntent.model_validate(base)
    with pytest.raises(ValidationError, match="exactly one"):
        DeliveryIntent.model_validate(
            {**base, "notification": n, "ref": NotificationRef.of(n, SOURCE)}
        )


@pytest.mark.parametrize(
    ("notice", "previous_version", "prior_only", "changed"),
    [
        (NoticeType.relayed, None, False, False),
        (NoticeType.revised, 1, True, False),
        (NoticeType.revised, 1, False, True),
    ],
)
def test_first_attempts_serialise_as_the_models_would(
    notice: NoticeType, previous_version: int | None, prior_only: bool, changed: bool
) -> None:
    # The match agent writes intents from JSON-ready dicts; the delivery side must read
    # exactly the intents the models would have made.
    notification, _, _ = make_notification(
        notice, previous_version=previous_version, prior_recipient_only=prior_only
    )
    if changed:
        change = FieldChange(field="effective_from", label="施行日期", before=None, after="x")
        notification = notification.model_copy(
            update={"changes_computed": [change], "changes_from": 1}
        )
    source = DocumentSource(partition=2, offset=41)
    ref = first_attempt_ref(notification, source)
    fast = [first_attempt(ref, d) for d in notification.deliveries] * 3
    expected = [
        DeliveryIntent(
            delivery_id=d.delivery_id,
            channel_id=d.channel_id,
            channel_type=d.channel_type,
            ref=NotificationRef.of(notification, source),
        )
        for d in notification.deliveries
    ] * 3
    bundle = INTENT_JSON.dump_json({"intents": fast}, exclude_none=True)
    assert bundle == IntentBundle(intents=expected).model_dump_json(exclude_none=True).encode()
    assert delivery_intents(bundle) == expected
    assert delivery_intents(INTENT_JSON.dump_json(fast[0], exclude_none=True)) == expected[:1]
    # The delivery side completes the reference into the very notification, changes and all.
    assert expected[0].ref is not None
    assert expected[0].ref.with_document(notification.document) == notification


def test_a_batch_over_the_size_bound_is_split_in_order_and_each_part_reads_back() -> None:
    records = [
        AuditRecord(kind="notification.planned", at=T0, document_id="D", detail=str(i) * 40_000)
        for i in range(25)
    ]
    parts = fit(records, audit_value)
    assert len(parts) > 1
    assert all(len(value) <= MAX_BUNDLE_BYTES for _, value in parts)
    assert [r for _, value in parts for r in audit_records(value)] == records
    assert [r for part, _ in parts for r in part] == records
    # Small batches stay whole; a lone item too large is still written, alone.
    assert fit(records[:3], audit_value) == [(records[:3], audit_value(records[:3]))]
    (lone,) = fit(records[:1], audit_value, max_bytes=10)
    assert lone == (records[:1], audit_value(records[:1]))
