"""Names and shapes of every topic the relay owns."""

from __future__ import annotations

from dataclasses import dataclass

DOCUMENTS = "documents.published"
ACCEPTED = "relay.documents.accepted"
REJECTED = "relay.rejected"
PARTNERS = "relay.partners"
DELIVER_EMAIL = "relay.deliveries.email"
DELIVER_WEBHOOK = "relay.deliveries.webhook"
RETRY = "relay.retry"
AUDIT = "relay.audit"
DEAD_LETTER = "relay.dead-letter"

#: Delivery intents by channel type: separate topics, so a slow SMTP server never holds up
#: webhooks. Keyed by partner id, like RETRY and DEAD_LETTER, so a partner's deliveries,
#: retries and ledger entries share one partition number and so one worker.
DELIVER = {"email": DELIVER_EMAIL, "webhook": DELIVER_WEBHOOK}


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
    TopicSpec(DELIVER_EMAIL),
    TopicSpec(DELIVER_WEBHOOK),
    TopicSpec(RETRY),
    TopicSpec(AUDIT),
    TopicSpec(DEAD_LETTER),
)
