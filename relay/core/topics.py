"""Names and shapes of every topic the relay owns."""

from __future__ import annotations

from dataclasses import dataclass

DOCUMENTS = "documents.published"
ACCEPTED = "relay.documents.accepted"
REJECTED = "relay.rejected"
PARTNERS = "relay.partners"
DELIVER_EMAIL = "relay.deliveries.email"
DELIVER_WEBHOOK = "relay.deliveries.webhook"
#: Group-bot deliveries (企业微信, 钉钉, 飞书): paced to each platform's rate limits, so a
#: bot waiting for its next minute never holds up an email or a webhook.
DELIVER_CHAT = "relay.deliveries.chat"
RETRY = "relay.retry"
AUDIT = "relay.audit"
DEAD_LETTER = "relay.dead-letter"
#: Questions to the drafting units and their answers (item 6), keyed by question id, each
#: record the question's whole state: compacted, read whole by every worker.
QUESTIONS = "relay.questions"
#: The value of a calendar tick on ACCEPTED: "look for due expiry reminders and pending
#: catch-ups in this partition" (the match agent owns the documents' state there).
CALENDAR_TICK = b'{"calendar_tick":true}'
#: Every worker's beat: the partitions it holds and how far it read them (relay.coverage).
WORKERS = "relay.workers"

#: Delivery intents by channel type: separate topics, so a slow SMTP server never holds up
#: webhooks. Keyed by partner id, like RETRY and DEAD_LETTER, so a partner's deliveries,
#: retries and ledger entries share one partition number and so one worker.
DELIVER = {
    "email": DELIVER_EMAIL,
    "webhook": DELIVER_WEBHOOK,
    "wecom": DELIVER_CHAT,
    "dingtalk": DELIVER_CHAT,
    "feishu": DELIVER_CHAT,
}
#: Each delivery topic once, with the channel types it carries.
DELIVERY_TOPICS: dict[str, tuple[str, ...]] = {
    topic: tuple(t for t, to in DELIVER.items() if to == topic)
    for topic in dict.fromkeys(DELIVER.values())
}
#: The topics the agents read in the consumer group, whose partitions the group shares out
#: (changelogs and the topics every worker reads whole are not among them).
CONSUMED = frozenset({DOCUMENTS, ACCEPTED, RETRY, *DELIVER.values()})


@dataclass(frozen=True)
class TopicSpec:
    name: str
    #: None = the app's ``topic_partitions``.
    partitions: int | None = None
    #: Topic configuration on Apache Kafka (the embedded broker ignores it).
    config: tuple[tuple[str, str], ...] = ()


def spec(name: str) -> TopicSpec:
    return next(s for s in ALL if s.name == name)


ALL = (
    TopicSpec(DOCUMENTS),
    TopicSpec(ACCEPTED),
    TopicSpec(REJECTED),
    # One partition: every worker reads all of it into its registry, in order. Compacted:
    # Kafka keeps each partner's latest record (a removal's tombstone for a day) forever,
    # where a time-based retention (Kafka's default: 7 days) would drop the registry.
    TopicSpec(
        PARTNERS,
        partitions=1,
        config=(("cleanup.policy", "compact"), ("delete.retention.ms", str(86400 * 1000))),
    ),
    TopicSpec(DELIVER_EMAIL),
    TopicSpec(DELIVER_WEBHOOK),
    TopicSpec(DELIVER_CHAT),
    TopicSpec(RETRY),
    TopicSpec(AUDIT),
    # Kept until replayed (or removed by an operator): never dropped by age.
    TopicSpec(DEAD_LETTER, config=(("retention.ms", "-1"),)),
    # One partition, read whole by every worker into its question book; the latest record
    # of a question is its state.
    TopicSpec(QUESTIONS, partitions=1, config=(("cleanup.policy", "compact"),)),
    # One partition, read whole by every worker; only the last minutes matter.
    TopicSpec(WORKERS, partitions=1, config=(("retention.ms", str(3600 * 1000)),)),
)
