"""What flows between agents: match results, notifications, rejections, audit records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from relay.models.document import Document
from relay.models.partner import PartnerKind


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


ChannelType = Literal["email", "webhook"]


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
    raw: str = ""
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


class DeliveryIntent(BaseModel):
    """One delivery to make: the value of the delivery, retry and dead-letter topics.

    The id is stable across attempts, retries and replays.
    """

    delivery_id: str
    channel_id: str
    channel_type: ChannelType
    notification: Notification
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


class Attempt(BaseModel):
    """One attempt of one delivery, as the ledger keeps it."""

    attempt: int
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
