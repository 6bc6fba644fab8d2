"""A full minute without an SMTP server (DESIGN §8): every email arrives once it is back.

This stack has a retry schedule of its own, long enough to span the outage (5, 30, 45, 60 s,
each ±20 %): the session stack's compressed schedule gives up after about 5 s. So the test
takes a real minute and a half.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import DeliveryStatus, Partner, audit_records
from relay.core.settings import Settings
from relay.embedded.broker import free_port
from relay.embedded.stack import Stack
from tests.helpers.receivers import SMTPRecorder, WebhookReceiver
from tests.integration.conftest import RelayUnderTest
from tests.integration.test_faults import REGION, TAG, fault_event, planned_deliveries

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

OUTAGE = 60.0
PARTNERS = 20
SCHEDULE = (5.0, 30.0, 45.0, 60.0)


def mail_partner(i: int, park: str) -> Partner:
    return Partner.model_validate(
        {
            "id": f"outage-{i:02d}",
            "kind": "park",
            "name": f"停机测试园区 {i:02d}",
            "coverage": {"regions": [REGION], "parks": [park]},
            "interests": {"tags_any": [TAG]},
            "channels": [{"type": "email", "to": [f"outage-{i:02d}@outage.example.org"]}],
        }
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def outage_relay(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[RelayUnderTest, str]]:
    park = f"outage-{uuid.uuid4().hex[:6]}"
    partners = [mail_partner(i, park) for i in range(PARTNERS)]
    run_dir = tmp_path_factory.mktemp("outage")
    with SMTPRecorder() as smtp:
        async with WebhookReceiver({}) as hooks:
            settings = Settings(
                app_id=f"relay-outage-{uuid.uuid4().hex[:8]}",
                web_port=free_port(),
                smtp_host=smtp.host,
                smtp_port=smtp.port,
                data_dir=run_dir,
                retry_schedule=SCHEDULE,
                retry_floor=1.0,
                retry_tick=0.5,
                smtp_timeout=5.0,
            )
            async with Stack(settings, partners, run_dir=run_dir, broker_port=free_port()) as stack:
                assert stack.worker_settings is not None
                yield RelayUnderTest(stack, hooks, smtp, stack.worker_settings), park


async def test_a_minute_without_smtp_loses_no_email_and_repeats_none(
    outage_relay: tuple[RelayUnderTest, str],
) -> None:
    relay, park = outage_relay
    relay.smtp.stop()
    down_at = time.monotonic()
    try:
        ev = fault_event(park)
        await relay.publish_events(ev)
        # Every email has failed once and waits for a retry, with the server still down.
        deadline = down_at + 30
        while True:
            retrying = {
                a.delivery_id
                for r in await kafka.read_topic(relay.settings, topics.AUDIT)
                for a in audit_records(r.value or b"")
                if a.kind == "delivery.retrying" and a.document_id == ev["document"]["id"]
            }
            if len(retrying) == PARTNERS:
                break
            assert time.monotonic() < deadline, f"{len(retrying)} of {PARTNERS} retrying"
            await asyncio.sleep(0.5)
        await asyncio.sleep(max(0.0, down_at + OUTAGE - time.monotonic()))
    finally:
        relay.smtp.start()
    outage = time.monotonic() - down_at
    assert outage >= OUTAGE

    progress = await relay.settle([ev["event_id"]], timeout=120)
    planned = planned_deliveries(progress, ev)
    assert len(planned) == PARTNERS
    outcomes = [o for o in progress.outcomes.values() if o.delivery_id in planned]
    assert {o.delivery_id for o in outcomes} == planned
    assert all(o.status == DeliveryStatus.delivered for o in outcomes)
    assert all((o.attempt or 0) >= 2 for o in outcomes)

    # Each address got its email under one delivery id (a repeat would keep it), nothing lost.
    ids_by_address: dict[str, set[str]] = defaultdict(set)
    for m in relay.smtp.messages:
        if m["To"] and m["To"].endswith("@outage.example.org"):
            ids_by_address[m["To"]].add(m["X-Relay-Delivery-Id"])
            assert m["Message-ID"] == f"<{m['X-Relay-Delivery-Id']}@policy-relay>"
    assert len(ids_by_address) == PARTNERS
    assert all(len(ids) == 1 for ids in ids_by_address.values())
    assert set().union(*ids_by_address.values()) == planned
    print(f"\nSMTP down {outage:.0f} s: {len(relay.smtp.messages)} messages, 0 lost")
