"""What flows between agents: match results, notifications, rejections, audit records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from relay.core.models.document import Document
from relay.core.models.limits import MAX_BUNDLE_BYTES
from relay.core.models.partner import PartnerKind


class Dimension(StrEnum):
    audiences = "audiences"
    industries = "industries"
    regions = "regions"
    parks = "parks"
    scales = "scales"
    tags = "tags"


class Reason(BaseModel):
    """One dimension that said yes, and the codes that met (empty scope = applies to all)."""

    model_config = ConfigDict(frozen=True)

    dimension: Dimension
    scope_codes: list[str] = Field(default_factory=list)
    partner_codes: list[str] = Field(default_factory=list)
    applies_to_all: bool = False


class MatchResult(BaseModel):
    """The three-valued verdict of one document against one partner, with its explanation."""

    model_config = ConfigDict(frozen=True)

    matched: bool
    reasons: list[Reason] = Field(default_factory=list)
    unknowns: list[Dimension] = Field(default_factory=list)
    #: When not matched: the first dimension that said no.
    refused_by: Dimension | None = None
    paused: bool = False


class NoticeType(StrEnum):
    relayed = "policy.relayed"
    revised = "policy.revised"
    repealed = "policy.repealed"
    #: A reminder that a normative document's validity ends soon (``[到期提醒]``).
    expiring = "policy.expiring"


class FieldChange(BaseModel):
    """One field a revision changed, as the relay computed it (not the publisher's note).

    ``before`` and ``after`` are the values as a notice shows them (dates as 2023年8月1日,
    codes with their names), each cut to CHANGE_VALUE_MAX characters; None = not stated.
    """

    model_config = ConfigDict(frozen=True)

    field: str
    label: str
    before: str | None = None
    after: str | None = None


ChannelType = Literal["email", "webhook", "wecom", "dingtalk", "feishu"]


class PlannedDelivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    delivery_id: str
    channel_id: str
    channel_type: ChannelType


class Notification(BaseModel):
    """One notice of one document version to one partner; fanned out to its channels."""

    model_config = ConfigDict(frozen=True)

    notification_id: str
    type: NoticeType
    event_id: str
    document: Document
    partner_id: str
    partner_name: str
    partner_kind: PartnerKind
    match: MatchResult
    deliveries: list[PlannedDelivery]
    #: Revisions and repeals: the version the partner received before.
    previous_version: int | None = None
    #: Revisions: the partner no longer matches the new scope, but got an earlier version.
    prior_recipient_only: bool = False
    #: Revisions: the fields that differ from the version before (``changes_from``).
    changes_computed: list[FieldChange] = Field(default_factory=list)
    changes_from: int | None = None
    #: Catch-up: an earlier, still valid policy sent because the partner joined or widened
    #: its coverage or interests (partner ``catch_up: true``).
    catch_up: bool = False
    planned_at: datetime


class Rejection(BaseModel):
    """The value of a ``relay.rejected`` record: an event that was not accepted, and why."""

    reason: str
    message: str
    field: str | None = None
    event_id: str | None = None
    document_id: str | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    #: The record's value as text, cut after its first RAW_KEEP bytes (marked "…").
    raw: str = ""
    #: The size of the whole value, in bytes.
    raw_bytes: int | None = None
    rejected_at: datetime


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    retrying = "retrying"
    failed = "failed"
    disabled = "disabled"
    dead = "dead"


FINAL_STATUSES = frozenset(
    {DeliveryStatus.delivered, DeliveryStatus.failed, DeliveryStatus.disabled, DeliveryStatus.dead}
)


class AuditRecord(BaseModel):
    """One step of the relay, appended to ``relay.audit`` (item 24: 全程留痕、可追溯)."""

    kind: str
    at: datetime
    event_id: str | None = None
    document_id: str | None = None
    version: int | None = None
    partner_id: str | None = None
    notification_id: str | None = None
    delivery_id: str | None = None
    channel_id: str | None = None
    channel_type: ChannelType | None = None
    status: DeliveryStatus | None = None
    attempt: int | None = None
    latency_ms: float | None = None
    detail: str | None = None
    reason: str | None = None
    deliveries: list[str] = Field(default_factory=list)
    match: MatchResult | None = None
    #: Delivery attempts: the HTTP status, or the SMTP reply code.
    http_status: int | None = None
    #: Retries: when the next attempt is due.
    next_attempt_at: datetime | None = None
    #: Acknowledgements (kind ``delivery.acked``): enterprises reached, and the partner's note.
    forwarded_to: int | None = None
    note: str | None = None
    #: Questions (kinds ``question.asked``, ``question.answered``): which one; ``note``
    #: holds its text, or the answer's.
    question_id: str | None = None


class DocumentSource(BaseModel):
    """Where a document version was accepted: its record in ``relay.documents.accepted``."""

    model_config = ConfigDict(frozen=True)

    partition: int
    offset: int


class NotificationRef(BaseModel):
    """A notification without its document, which the delivery side reads from ``source``.

    First attempts carry this instead of the whole notification: a document fanned out to
    10,000 channels is then written, read and parsed once, not 10,000 times.
    """

    model_config = ConfigDict(frozen=True)

    notification_id: str
    type: NoticeType
    event_id: str
    document_id: str
    version: int
    source: DocumentSource
    partner_id: str
    partner_name: str
    partner_kind: PartnerKind
    match: MatchResult
    deliveries: list[PlannedDelivery]
    previous_version: int | None = None
    prior_recipient_only: bool = False
    changes_computed: list[FieldChange] = Field(default_factory=list)
    changes_from: int | None = None
    catch_up: bool = False
    planned_at: datetime

    @classmethod
    def of(cls, n: Notification, source: DocumentSource) -> NotificationRef:
        return cls(**first_attempt_ref(n, source))

    def with_document(self, document: Document) -> Notification:
        """The whole notification (``document`` must be the version this refers to)."""
        if (document.id, document.version) != (self.document_id, self.version):
            raise ValueError(
                f"document {document.id} v{document.version} is not the referenced "
                f"{self.document_id} v{self.version}"
            )
        return Notification(
            notification_id=self.notification_id,
            type=self.type,
            event_id=self.event_id,
            document=document,
            partner_id=self.partner_id,
            partner_name=self.partner_name,
            partner_kind=self.partner_kind,
            match=self.match,
            deliveries=self.deliveries,
            previous_version=self.previous_version,
            prior_recipient_only=self.prior_recipient_only,
            changes_computed=self.changes_computed,
            changes_from=self.changes_from,
            catch_up=self.catch_up,
            planned_at=self.planned_at,
        )


class DeliveryIntent(BaseModel):
    """One delivery to make: the value of the delivery, retry and dead-letter topics.

    The id is stable across attempts, retries and replays. It carries either the whole
    notification (retries, dead letters, replays: they must not depend on anything else) or,
    on a first attempt, a :class:`NotificationRef` that the delivery agent completes.
    """

    delivery_id: str
    channel_id: str
    channel_type: ChannelType
    notification: Notification | None = None
    ref: NotificationRef | None = None
    attempt: int = 1
    #: Retries: not to be attempted before this time.
    due_at: datetime | None = None
    first_attempt_at: datetime | None = None
    last_error: str | None = None
    #: How many times an operator replayed it from the dead letters.
    replays: int = 0
    #: Dead letters: why it ended there.
    dead_reason: str | None = None
    dead_at: datetime | None = None

    @model_validator(mode="after")
    def _one_notification(self) -> DeliveryIntent:
        if (self.notification is None) == (self.ref is None):
            raise ValueError("a delivery intent needs exactly one of notification and ref")
        return self

    @property
    def partner_id(self) -> str:
        return self.notification.partner_id if self.notification else self.ref.partner_id  # type: ignore[union-attr]

    @property
    def document_id(self) -> str:
        return self.notification.document.id if self.notification else self.ref.document_id  # type: ignore[union-attr]

    @property
    def full(self) -> Notification:
        """The whole notification (only once the intent carries it)."""
        if self.notification is None:
            raise ValueError(f"delivery intent {self.delivery_id} carries only a reference")
        return self.notification


class Attempt(BaseModel):
    """One attempt of one delivery, as the ledger keeps it."""

    attempt: int
    #: The replay round it belongs to (the intent's ``replays``): each replay starts again
    #: at attempt 1, so an attempt is known by (replay, attempt).
    replay: int = 0
    at: datetime
    status: str
    http_status: int | None = None
    latency_ms: float | None = None
    detail: str | None = None


class LedgerEntry(BaseModel):
    """The state of one delivery and every attempt it took (the ``ledger`` table)."""

    delivery_id: str
    partner_id: str
    document_id: str
    channel_id: str
    channel_type: ChannelType
    status: DeliveryStatus = DeliveryStatus.pending
    attempts: list[Attempt] = Field(default_factory=list)
    next_attempt_at: datetime | None = None
    #: Why it was dead-lettered (``permanent_failure``…), while it is.
    reason: str | None = None


class AuditBatch(BaseModel):
    """Several audit records of one document in one ``relay.audit`` value."""

    records: list[AuditRecord]


def audit_records(value: bytes) -> list[AuditRecord]:
    """The records in one ``relay.audit`` value: one record, or ``{"records": [...]}``.

    Writers batch the records of one document (a fan-out's planned notifications, a
    delivery batch's outcomes) into one value; readers see the same records either way.
    Raises pydantic's ValidationError on anything else.
    """
    if value.lstrip()[:10] == b'{"records"':
        return AuditBatch.model_validate_json(value).records
    return [AuditRecord.model_validate_json(value)]


def audit_value(records: Sequence[AuditRecord]) -> bytes:
    """One ``relay.audit`` value holding ``records`` (the inverse of :func:`audit_records`)."""
    if len(records) == 1:
        return records[0].model_dump_json().encode()
    return AuditBatch.model_construct(records=list(records)).model_dump_json().encode()


T = TypeVar("T")


def fit(
    items: Sequence[T], encode: Callable[[Sequence[T]], bytes], max_bytes: int = MAX_BUNDLE_BYTES
) -> list[tuple[Sequence[T], bytes]]:
    """``items`` as one value, or, when that is over ``max_bytes``, split in halves until
    each part fits (or holds one item); (part, value) pairs, in order.

    Bundles and batches are bounded by count for speed; this bounds them by size, so
    25 retries of a large document never make a record the producer refuses.
    """
    value = encode(items)
    if len(value) <= max_bytes or len(items) == 1:
        return [(items, value)]
    half = len(items) // 2
    return fit(items[:half], encode, max_bytes) + fit(items[half:], encode, max_bytes)


class IntentBundle(BaseModel):
    """Several intents in one value of a delivery topic, all of one partition.

    The match agent (and the retry agent, for due retries) bundles intents by the partition
    their partner's key hashes to, so a partner's deliveries stay in one partition and in
    order; a lone intent and replays travel one per value, keyed by partner.
    """

    intents: list[DeliveryIntent]


def first_attempt_ref(n: Notification, source: DocumentSource) -> dict[str, Any]:
    """The fields of ``NotificationRef.of(n, source)``, models left inside as they are.

    The match agent serialises a fan-out's intents from these (see :data:`INTENT_JSON`)
    rather than building 10,000 references and intents first; a unit test holds the
    serialised result to the models.
    """
    ref: dict[str, Any] = {
        "notification_id": n.notification_id,
        "type": n.type,
        "event_id": n.event_id,
        "document_id": n.document.id,
        "version": n.document.version,
        "source": source,
        "partner_id": n.partner_id,
        "partner_name": n.partner_name,
        "partner_kind": n.partner_kind,
        "match": n.match,
        "deliveries": n.deliveries,
        "previous_version": n.previous_version,
        "prior_recipient_only": n.prior_recipient_only,
        "changes_computed": n.changes_computed,
        "changes_from": n.changes_from,
        "catch_up": n.catch_up,
        "planned_at": n.planned_at,
    }
    # As exclude_none would (it skips dicts' own keys).
    if n.previous_version is None:
        del ref["previous_version"]
    if n.changes_from is None:
        del ref["changes_from"]
    return ref


def first_attempt(ref: dict[str, Any], delivery: PlannedDelivery) -> dict[str, Any]:
    """A first-attempt :class:`DeliveryIntent` over ``ref`` (see :func:`first_attempt_ref`)."""
    return {
        "delivery_id": delivery.delivery_id,
        "channel_id": delivery.channel_id,
        "channel_type": delivery.channel_type,
        "ref": ref,
        "attempt": 1,
        "replays": 0,
    }


#: Serialises intents, models or their JSON-ready dicts alike (``exclude_none=True``).
INTENT_JSON: TypeAdapter[Any] = TypeAdapter(Any)


def delivery_intents(value: bytes) -> list[DeliveryIntent]:
    """The intents in one delivery-topic value: one intent, or ``{"intents": [...]}``.

    Raises pydantic's ValidationError on anything else.
    """
    if value.lstrip()[:10] == b'{"intents"':
        return IntentBundle.model_validate_json(value).intents
    return [DeliveryIntent.model_validate_json(value)]
