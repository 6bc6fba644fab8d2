"""The delivery ledger: a batch's entries travel in one changelog record and come back whole.

Against the session's real stack (embedded broker, worker, verifying webhook receiver).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import pytest

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import DeliveryIntent, audit_records, delivery_intents
from relay.runtime.ledger import BATCH_KEY
from tests.integration.conftest import RelayUnderTest
from tests.integration.test_faults import fan_out

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_ledger_entries_survive_a_crash_and_a_delivered_intent_is_never_resent(
    relay: RelayUnderTest,
) -> None:
    tag = uuid.uuid4().hex[:6]
    ev, planned = await fan_out(relay, f"ledger-{tag}", 12)

    def requests() -> Counter[str | None]:
        got = [r for r in relay.hooks.received if r.path.startswith(f"/fault/f-ledger-{tag}-")]
        return Counter(r.webhook_id for r in got)

    assert requests() == Counter(dict.fromkeys(planned, 1))

    # The changelog holds the entries in batch records (fewer records than entries), each
    # entry in the partition of the intent it records. (Older batch records are covered
    # later by records under the entries' own keys and tombstones: test_compaction.py.)
    changelog = f"{relay.settings.app_id}-ledger-changelog"
    entries: dict[str, dict[str, object]] = {}
    records_with_mine = 0
    for r in await kafka.read_topic(relay.settings, changelog):
        key = json.loads(r.key) if r.key and r.key.startswith(b'"') else (r.key or b"").decode()
        if not str(key).startswith(BATCH_KEY) or r.value is None:
            continue
        value = json.loads(r.value)
        mine = {k: v for k, v in value.items() if k in planned}
        records_with_mine += bool(mine)
        entries.update(mine)
    assert set(entries) == planned
    assert records_with_mine < len(planned)
    assert all(e["status"] == "delivered" for e in entries.values())

    # The worker dies and comes back: its ledger is rebuilt from those records. Every
    # intent of the fan-out then arrives again (as after a crash before the commit).
    await relay.stack.kill_worker()
    relay.stack.start_worker()
    await relay.stack.wait_ready()
    again = [
        intent
        for r in await kafka.read_topic(relay.settings, topics.DELIVER_WEBHOOK)
        for intent in _intents(r.value)
        if intent.delivery_id in planned
    ]
    assert {i.delivery_id for i in again} == planned
    await kafka.produce(
        relay.settings,
        [(topics.DELIVER_WEBHOOK, i.partner_id, i.model_dump_json().encode()) for i in again],
    )

    # Each is recorded as already delivered, and none is sent again.
    deadline = time.monotonic() + 60
    while True:
        done = {
            rec.delivery_id
            for r in await kafka.read_topic(relay.settings, topics.AUDIT)
            for rec in audit_records(r.value or b"")
            if rec.delivery_id in planned
            and rec.detail
            and rec.detail.startswith("already delivered")
        }
        if done >= planned:
            break
        assert time.monotonic() < deadline, f"only {len(done)} of 12 were recorded again"
        await asyncio.sleep(0.3)
    assert requests() == Counter(dict.fromkeys(planned, 1))


def _intents(value: bytes | None) -> list[DeliveryIntent]:
    try:
        return list(delivery_intents(value or b""))
    except ValueError:  # another test's malformed record
        return []
