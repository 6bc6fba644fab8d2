"""Replaying dead letters: re-queue them with the same delivery ids."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import DeliveryIntent
from relay.core.settings import Settings


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters to replay; every given criterion must hold."""

    delivery_ids: Collection[str] | None = None
    partner_id: str | None = None
    document_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __call__(self, intent: DeliveryIntent) -> bool:
        if self.delivery_ids is not None and intent.delivery_id not in self.delivery_ids:
            return False
        if self.partner_id is not None and intent.partner_id != self.partner_id:
            return False
        if self.document_id is not None and intent.document_id != self.document_id:
            return False
        at = intent.dead_at
        if self.since is not None and (at is None or at < self.since):
            return False
        return not (self.until is not None and (at is None or at > self.until))


def select(records: list[kafka.Record], keep: DeadLetterFilter) -> list[DeliveryIntent]:
    """The latest dead letter of each delivery that passes the filter; malformed ones skipped."""
    latest: dict[str, DeliveryIntent] = {}
    for rec in records:
        try:
            intent = DeliveryIntent.model_validate_json(rec.value or b"")
        except ValidationError:
            continue  # a record that was unreadable when it died cannot be replayed
        latest[intent.delivery_id] = intent
    return [i for i in latest.values() if keep(i)]


def requeued(intent: DeliveryIntent) -> DeliveryIntent:
    """A fresh first attempt under the same delivery id."""
    return intent.model_copy(
        update={
            "attempt": 1,
            "due_at": None,
            "dead_reason": None,
            "dead_at": None,
            "replays": intent.replays + 1,
        }
    )


async def replay_dead_letters(
    settings: Settings,
    *,
    delivery_ids: Collection[str] | None = None,
    partner_id: str | None = None,
    document_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[str]:
    """Re-queue the matching dead letters; returns their delivery ids.

    A delivery that got through since (the ledger says delivered) is skipped by the
    delivery agent, so replaying twice never sends twice.
    """
    keep = DeadLetterFilter(
        set(delivery_ids) if delivery_ids is not None else None,
        partner_id,
        document_id,
        since,
        until,
    )
    chosen = select(await kafka.read_topic(settings, topics.DEAD_LETTER), keep)
    await kafka.produce(
        settings,
        [
            (
                topics.DELIVER[i.channel_type],
                i.partner_id,
                requeued(i).model_dump_json().encode(),
            )
            for i in chosen
        ],
    )
    return [i.delivery_id for i in chosen]
