"""Names and shapes of every topic the relay owns."""

from __future__ import annotations

from dataclasses import dataclass

DOCUMENTS = "documents.published"
ACCEPTED = "relay.documents.accepted"
REJECTED = "relay.rejected"
PARTNERS = "relay.partners"
NOTIFICATIONS = "relay.notifications"
AUDIT = "relay.audit"
DEAD_LETTER = "relay.dead-letter"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    #: None = the app's ``topic_partitions``.
    partitions: int | None = None


ALL = (
    TopicSpec(DOCUMENTS),
    TopicSpec(ACCEPTED),
    TopicSpec(REJECTED),
    # One partition: every worker reads all of it into its registry, in order.
    TopicSpec(PARTNERS, partitions=1),
    TopicSpec(NOTIFICATIONS),
    TopicSpec(AUDIT),
    TopicSpec(DEAD_LETTER),
)
