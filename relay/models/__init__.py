"""Pydantic models of the relay: document events, partners, and what flows between agents."""

from relay.models.document import (
    Audience,
    Document,
    DocumentEvent,
    EventType,
    Scale,
    Scope,
)
from relay.models.partner import (
    Channel,
    Coverage,
    DeliveryMode,
    DeliveryPrefs,
    EmailChannel,
    Interests,
    Partner,
    WebhookChannel,
)
from relay.models.records import (
    FINAL_STATUSES,
    AuditRecord,
    DeliveryStatus,
    Dimension,
    MatchResult,
    NoticeType,
    Notification,
    PlannedDelivery,
    Reason,
    Rejection,
)

__all__ = [
    "FINAL_STATUSES",
    "Audience",
    "AuditRecord",
    "Channel",
    "Coverage",
    "DeliveryMode",
    "DeliveryPrefs",
    "DeliveryStatus",
    "Dimension",
    "Document",
    "DocumentEvent",
    "EmailChannel",
    "EventType",
    "Interests",
    "MatchResult",
    "NoticeType",
    "Notification",
    "Partner",
    "PlannedDelivery",
    "Reason",
    "Rejection",
    "Scale",
    "Scope",
    "WebhookChannel",
]
