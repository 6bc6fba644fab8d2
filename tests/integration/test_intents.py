"""First-attempt intents: bundled per partition, the document read by reference.

Against the session's real stack (embedded broker, worker, verifying webhook receiver).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import (
    DeliveryIntent,
    DocumentSource,
    MatchResult,
    NoticeType,
    NotificationRef,
    PlannedDelivery,
    delivery_intents,
)
from tests.helpers.waits import wait_consumed
from tests.integration.conftest import RelayUnderTest
from tests.integration.test_faults import add_partners, fan_out, fault_event, fault_partner

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_a_fan_out_travels_in_bundles_each_in_its_partners_partition(
    relay: RelayUnderTest,
) -> None:
    tag = uuid.uuid4().hex[:6]
    _, planned = await fan_out(relay, f"bundle-{tag}", 40)
    got = [r for r in relay.hooks.received if r.path.startswith(f"/fault/f-bundle-{tag}-")]
    assert Counter(r.webhook_id for r in got) == Counter(planned)  # each once, under its id
    assert all(r.verified for r in got)

    # On the delivery topic: the 40 intents in fewer records than intents, each intent in
    # the partition its partner id hashes to (as a keyed record would be), and thin.
    records = await kafka.read_topic(relay.settings, topics.DELIVER_WEBHOOK)
    partitions = sorted(
        {r.partition for r in records} | set(range(relay.settings.topic_partitions))
    )
    mine: list[tuple[int, DeliveryIntent, bytes]] = []
    for r in records:
        try:
            intents = delivery_intents(r.value or b"")
        except ValidationError:
            continue  # another test's malformed record
        for intent in intents:
            if intent.delivery_id in planned:
                mine.append((r.partition, intent, r.value or b""))
    assert {i.delivery_id for _, i, _ in mine} == planned
    assert len({v for _, _, v in mine}) < len(mine)  # bundled
    hashed = DefaultPartitioner()
    for partition, intent, value in mine:
        assert partition == hashed(intent.partner_id.encode(), partitions, partitions)
        assert intent.notification is None and intent.ref is not None
        assert "故障注入测试通知".encode() not in value  # the document is not copied into it


def thin_intent(source: DocumentSource, *, document_id: str, partner_id: str) -> DeliveryIntent:
    delivery = PlannedDelivery(
        delivery_id=f"dlv_test_{uuid.uuid4().hex[:12]}",
        channel_id="webhook-1",
        channel_type="webhook",
    )
    ref = NotificationRef(
        notification_id=f"ntf_test_{uuid.uuid4().hex[:12]}",
        type=NoticeType.relayed,
        event_id=str(uuid.uuid4()),
        document_id=document_id,
        version=1,
        source=source,
        partner_id=partner_id,
        partner_name="测试",
        partner_kind="park",
        match=MatchResult(matched=True),
        deliveries=[delivery],
        planned_at=datetime.now(UTC),
    )
    return DeliveryIntent(
        delivery_id=delivery.delivery_id,
        channel_id=delivery.channel_id,
        channel_type="webhook",
        ref=ref,
    )


async def dead_letter_of(relay: RelayUnderTest, delivery_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for r in await kafka.read_topic(relay.settings, topics.DEAD_LETTER):
            value = json.loads(r.value or b"{}")
            if value.get("delivery_id") == delivery_id:
                return value  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"{delivery_id} never reached the dead letters"
        await asyncio.sleep(0.3)


async def test_an_intent_pointing_at_another_document_is_dead_lettered_not_sent(
    relay: RelayUnderTest,
) -> None:
    # A real accepted document of its own (not one another test happened to publish).
    p = fault_partner(relay, f"f-ref-{uuid.uuid4().hex[:6]}")
    await add_partners(relay, p)
    ev = fault_event(p.id)
    await relay.publish_events(ev)
    await relay.settle([ev["event_id"]])
    accepted = [
        r
        for r in await kafka.read_topic(relay.settings, topics.ACCEPTED)
        if ev["event_id"].encode() in (r.value or b"")
    ]
    assert len(accepted) == 1, "the document was accepted once"
    somewhere = DocumentSource(partition=accepted[0].partition, offset=accepted[0].offset)
    intent = thin_intent(somewhere, document_id="NO-SUCH-DOCUMENT", partner_id=p.id)
    # Twice, as after a crash before the first copy's offset was committed.
    await kafka.produce(
        relay.settings,
        [(topics.DELIVER_WEBHOOK, p.id, intent.model_dump_json().encode())] * 2,
    )
    dead = await dead_letter_of(relay, intent.delivery_id, timeout=20)
    assert dead["dead_reason"] == "malformed"
    assert "not the referenced NO-SUCH-DOCUMENT" in dead["last_error"]
    # It is an intent again (replayable by its id), and nothing was sent.
    assert DeliveryIntent.model_validate(dead).delivery_id == intent.delivery_id
    assert not [r for r in relay.hooks.received if r.webhook_id == intent.delivery_id]
    # Dead-lettered once: the copy was known to the ledger.
    await wait_consumed(relay.settings, [topics.DELIVER_WEBHOOK])
    letters = [
        r
        for r in await kafka.read_topic(relay.settings, topics.DEAD_LETTER)
        if intent.delivery_id.encode() in (r.value or b"")
    ]
    assert len(letters) == 1


async def test_an_intent_whose_document_never_arrives_is_retried_then_dead_lettered(
    relay: RelayUnderTest,
) -> None:
    p = fault_partner(relay, f"f-ref-{uuid.uuid4().hex[:6]}")
    await add_partners(relay, p)
    beyond = DocumentSource(partition=0, offset=10**9)
    intent = thin_intent(beyond, document_id="NOT-YET", partner_id=p.id)
    await kafka.produce(
        relay.settings,
        [(topics.DELIVER_WEBHOOK, p.id, intent.model_dump_json().encode())],
    )
    # The test schedule (0.5, 1, 1, 2 s) runs out after about 5 s of waiting for it; each
    # attempt also waits up to 2 s for the follower to read that far.
    dead = await dead_letter_of(relay, intent.delivery_id, timeout=90)
    assert dead["dead_reason"] == "retries_exhausted"
    assert "no accepted document could be read" in dead["last_error"]
    assert dead["attempt"] == len(relay.settings.retry_schedule) + 1
    assert not [r for r in relay.hooks.received if r.webhook_id == intent.delivery_id]
