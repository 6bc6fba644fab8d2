"""Hostile records on documents.published: each lands on relay.rejected with its reason,
and the intake agent goes on to relay the valid event behind them (real broker and worker)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from relay.core import topics
from relay.core.models import DeliveryStatus
from relay.core.models.limits import MAX_EVENT_BYTES, RAW_KEEP, SUMMARY_MAX
from tests.helpers.receivers import fail_first
from tests.integration.conftest import RelayUnderTest, renamed, sample_event
from tests.integration.test_faults import (
    add_partners,
    behave,
    fault_event,
    fault_partner,
    outcomes_of,
)
from tests.integration.test_relay_end_to_end import TOWN, hooks_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def produce_large(relay: RelayUnderTest, key: str, values: list[bytes]) -> None:
    """Produce with a client that allows 16 MB records, as an outside producer may."""
    producer = AIOKafkaProducer(
        bootstrap_servers=relay.settings.bootstrap_servers,
        acks="all",
        max_request_size=16 * 1024 * 1024,
        request_timeout_ms=30_000,
    )
    await producer.start()
    try:
        for value in values:  # one by one, in order, into the key's partition
            await producer.send_and_wait(topics.DOCUMENTS, value=value, key=key.encode())
    finally:
        await producer.stop()


def encoded(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev, ensure_ascii=False).encode()


def oversize(ev: dict[str, Any], size: int) -> bytes:
    """``ev`` with a summary that makes it ``size`` bytes long (valid, but for its size)."""
    ev["document"]["summary"] = "政" * ((size - len(encoded(ev))) // 3)
    value = encoded(ev)
    return value + b" " * (size - len(value))


async def rejections_of(relay: RelayUnderTest, doc_id: str) -> list[dict[str, Any]]:
    return [r for r in await relay.rejections() if r.get("document_id") == doc_id]


async def test_hostile_records_are_rejected_with_reasons_and_the_worker_relays_the_next(
    relay: RelayUnderTest,
) -> None:
    doc_id = f"TEST-HOSTILE-{uuid.uuid4().hex[:6]}"
    base = sample_event("02-ic-industry-support.json")
    big_1mb, big_2mb, big_10mb, nul, valid = (renamed(base, doc_id) for _ in range(5))
    nul["document"]["title"] = "关于\x00印发\x07通知\u202eexe.txt"
    nested = b"[" * 50_000 + b"]" * 50_000
    deep = b'{"document": {"id": "%s", "summary": %s}}' % (doc_id.encode(), nested)
    latin = renamed(base, doc_id)
    latin["document"]["title"] = "@TITLE@"
    not_utf8 = encoded(latin).replace(b"@TITLE@", "政策".encode("gb18030") + b"\xff")
    records = [
        oversize(big_1mb, 1_100_000),
        oversize(big_2mb, 2_000_000),
        oversize(big_10mb, 10_000_000),
        deep,
        encoded(nul),
        not_utf8,
        encoded(valid),
    ]
    log_start = relay.stack.worker_log.stat().st_size
    # One key, so one partition: the valid event comes after every hostile one.
    await produce_large(relay, doc_id, records)
    ids = [e["event_id"] for e in (big_1mb, big_2mb, big_10mb, nul, valid)]
    progress = await relay.settle(ids, timeout=90)

    # The valid event behind them was relayed as usual.
    assert progress.trails[valid["event_id"]].matched is not None
    assert {h.path.removeprefix("/hooks/") for h in hooks_for(relay, doc_id)} == TOWN

    rejected = await rejections_of(relay, doc_id)
    by_event = {r["event_id"]: r for r in rejected}
    for ev, size in ((big_1mb, 1_100_000), (big_2mb, 2_000_000), (big_10mb, 10_000_000)):
        r = by_event[ev["event_id"]]
        assert r["reason"] == "too_large" and f"{MAX_EVENT_BYTES:,}" in r["message"]
        # The raw value is cut and kept, with the size of the whole.
        assert r["raw_bytes"] == size and r["raw"].endswith("…")
        assert r["raw"].startswith('{"event_id"') and len(r["raw"].encode()) <= RAW_KEEP + 3
    r = by_event[nul["event_id"]]
    assert (r["reason"], r["field"]) == ("invalid_event", "document.title")
    assert "U+0000" in r["message"]
    anonymous = [r for r in rejected if r["event_id"] is None]
    assert sorted(r["reason"] for r in anonymous) == ["not_json", "too_deep"]
    for r in anonymous:  # the record's key names the document when its value cannot
        assert r["source_topic"] == topics.DOCUMENTS and r["raw"]
    assert len(rejected) == 6
    # Each rejection is in the audit trail as well.
    assert {eid: progress.trails[eid].rejected is not None for eid in ids[:4]} == dict.fromkeys(
        ids[:4], True
    )
    # Nothing crashed on the way (Faust logs an agent's crash before restarting it).
    log = relay.stack.worker_log.read_bytes()[log_start:]
    for sign in (b"Crashed reason", b"intake_failed", b"RecursionError", b"MessageSizeTooLarge"):
        assert sign not in log, sign


async def test_retries_of_a_document_at_the_limits_fit_the_retry_topic(
    relay: RelayUnderTest,
) -> None:
    """A large document that fails at once at many channels: its retries carry the whole
    notification, bundled by partition, and every one still gets through."""
    name = f"big-{uuid.uuid4().hex[:6]}"
    partners = [fault_partner(relay, f"f-{name}-{i:02d}", park=name) for i in range(60)]
    for p in partners:
        behave(relay, p.id, fail_first(1))
    await add_partners(relay, *partners)
    ev = fault_event(name)
    ev["document"]["summary"] = "\U00020000" * SUMMARY_MAX  # 80 kB of four-byte characters
    ev["document"]["changes"] = "\U00020000" * 5_000
    ev["document"]["title"] = "\U00020000" * 500
    ev["document"]["tags"] = [ev["document"]["tags"][0]] + ["\U00020000" * 64] * 49
    assert len(encoded(ev)) > 110_000
    log_start = relay.stack.worker_log.stat().st_size
    await relay.publish_events(ev)
    progress = await relay.settle([ev["event_id"]], timeout=90)
    outcomes = outcomes_of(progress, ev)
    assert len(outcomes) == 60 and {o.status for o in outcomes} == {DeliveryStatus.delivered}
    assert {o.attempt for o in outcomes} == {2}
    log = relay.stack.worker_log.read_bytes()[log_start:]
    assert b"MessageSizeTooLarge" not in log and b"Crashed reason" not in log
