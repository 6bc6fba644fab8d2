"""The batched tables' changelogs under Apache Kafka's log compaction.

The embedded broker never compacts, so the test applies compaction itself to what a
worker wrote (the latest record of each key per partition, tombstones dropped) and checks
that what is left rebuilds the live ledger, that it stays bounded as batches keep coming,
and that a worker recovering from only what is left gives the same verdicts (no delivery
is attempted again). Each case runs its own stack, memory and RocksDB stores.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import Partner, audit_records
from relay.core.settings import Settings, TableStore
from relay.core.signing import new_secret
from relay.embedded.broker import free_port
from relay.embedded.stack import Stack
from relay.runtime.ledger import BATCH_KEY, BatchedTable
from tests.helpers.receivers import WebhookReceiver
from tests.integration.test_faults import REGION, TAG, fault_event
from tests.integration.test_table_store import stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

PARK = "compact"
PARTNERS = 4
KEEP = BatchedTable.keep_batches


def _key(r: kafka.Record) -> str:
    assert r.key is not None, "a table's changelog record always has a key"
    key = json.loads(r.key)
    assert isinstance(key, str)
    return key


def compacted(records: list[kafka.Record]) -> list[kafka.Record]:
    """What Kafka's log compaction leaves of a topic: per partition, the latest record of
    each key, and no tombstones (dropped once ``delete.retention.ms`` has passed)."""
    latest: dict[tuple[int, bytes | None], kafka.Record] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        latest[(r.partition, r.key)] = r
    kept = [r for r in latest.values() if r.value is not None]
    return sorted(kept, key=lambda r: (r.partition, r.offset))


def rebuild(records: list[kafka.Record]) -> dict[str, Any]:
    """The table a worker rebuilds from changelog records, read in offset order."""
    table: dict[str, Any] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        key = _key(r)
        if key.startswith(BATCH_KEY):
            if r.value is not None:
                table.update(json.loads(r.value))
        elif r.value is None:
            table.pop(key, None)
        else:
            table[key] = json.loads(r.value)
    return {k: v for k, v in table.items() if v is not None}


def batch_records_by_partition(records: list[kafka.Record]) -> Counter[int]:
    return Counter(r.partition for r in records if _key(r).startswith(BATCH_KEY))


async def _ledger_log(ws: Settings) -> list[kafka.Record]:
    return await kafka.read_topic(ws, f"{ws.app_id}-ledger-changelog")


async def _publish_and_wait(ws: Settings, hooks: WebhookReceiver, documents: int) -> None:
    """``documents`` documents, one at a time, each delivered to every partner: one
    ledger batch per partition for each."""
    for _ in range(documents):
        before = len(hooks.verified)
        ev = fault_event(PARK)
        await kafka.produce(ws, [(topics.DOCUMENTS, ev["document"]["id"], json.dumps(ev).encode())])
        await hooks.wait_for(before + PARTNERS, timeout=60)


async def _settled_log(ws: Settings, delivered: set[str]) -> list[kafka.Record]:
    """The ledger changelog once every delivery is recorded and the flushes' covers are
    done (a cover runs after the batch it follows, alongside the audit record)."""
    deadline = time.monotonic() + 60
    while True:
        log = await _ledger_log(ws)
        live = rebuild(log)
        done = all(live.get(d, {}).get("status") == "delivered" for d in delivered)
        left = batch_records_by_partition(compacted(log))
        if done and all(n <= KEEP for n in left.values()):
            return log
        assert time.monotonic() < deadline, (
            f"after 60 s: all delivered {done}; uncovered batch records {dict(left)}"
        )
        await asyncio.sleep(0.5)


async def _write_topic(ws: Settings, name: str, records: list[kafka.Record]) -> None:
    """A compacted topic holding exactly ``records``, each in its own partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=ws.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=ws.topic_partitions,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=ws.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(name, r.value, key=r.key, partition=r.partition)
    finally:
        await producer.stop()


@pytest.mark.timeout(480)  # two rounds of 18 documents, two restarts and a recovery
@pytest.mark.parametrize("store", [TableStore.memory, TableStore.rocksdb])
async def test_a_compacted_ledger_changelog_rebuilds_the_ledger_stays_bounded_and_recovers_verdicts(
    tmp_path: Path, store: TableStore
) -> None:
    paths = {f"/c{i}": new_secret() for i in range(PARTNERS)}
    async with WebhookReceiver(paths) as hooks:
        partners = [
            Partner.model_validate(
                {
                    "id": f"compact-{i}",
                    "kind": "park",
                    "name": f"日志压缩测试园区 {i}",
                    "coverage": {"regions": [REGION], "parks": [PARK]},
                    "interests": {"tags_any": [TAG]},
                    "channels": [{"type": "webhook", "url": hooks.url_for(path), "secret": secret}],
                }
            )
            for i, (path, secret) in enumerate(paths.items())
        ]
        settings = Settings(
            app_id=f"relay-compact-{uuid.uuid4().hex[:8]}",
            web_port=free_port(),
            data_dir=tmp_path,
            table_store=store,
            link_secret="test-link-secret",
        )
        stack = Stack(settings, partners, run_dir=tmp_path, broker_port=free_port())
        async with stack:
            ws = stack.worker_settings
            assert ws is not None

            # Round 1: 2·KEEP + 2 documents, each a ledger batch in each partition it reaches.
            await _publish_and_wait(ws, hooks, 2 * KEEP + 2)
            delivered = set(hooks.ids())
            assert len(delivered) == PARTNERS * (2 * KEEP + 2)
            log1 = await _settled_log(ws, delivered)
            kept1 = compacted(log1)
            live1 = rebuild(log1)
            assert rebuild(kept1) == live1
            # Covering happened: more batch records were written than compaction keeps.
            written1 = batch_records_by_partition(log1)
            assert max(written1.values()) > KEEP
            assert len(kept1) <= len(live1) + KEEP * len(written1)

            # A restart in between: the new worker learns the uncovered batch records
            # (memory: from the changelog; RocksDB: from its database) and covers them.
            await stop_worker(stack)
            stack.start_worker()
            await stack.wait_ready()

            # Round 2: as many again. History grows; what compaction keeps stays bounded.
            await _publish_and_wait(ws, hooks, 2 * KEEP + 2)
            delivered = set(hooks.ids())
            assert len(delivered) == 2 * PARTNERS * (2 * KEEP + 2)
            log2 = await _settled_log(ws, delivered)
            kept2 = compacted(log2)
            live2 = rebuild(log2)
            assert rebuild(kept2) == live2
            assert {d for d in delivered if live2[d]["status"] == "delivered"} == delivered
            assert len(log2) > len(log1) + len(delivered) // 2
            left = batch_records_by_partition(kept2)
            assert all(n <= KEEP for n in left.values()), left
            assert len(kept2) <= len(live2) + KEEP * len(left)

            # A worker that recovers from only what compaction leaves: a new app (its own
            # consumer group, so it reads every document and intent again from the start)
            # whose ledger changelog holds exactly the retained records.
            await stop_worker(stack)
            fresh = ws.replace(app_id=f"{ws.app_id}-r")
            await _write_topic(fresh, f"{fresh.app_id}-ledger-changelog", kept2)
            stack.worker_settings = fresh
            stack.start_worker()
            await stack.wait_ready()

            deadline = time.monotonic() + 90
            while True:
                again = {
                    rec.delivery_id
                    for r in await kafka.read_topic(fresh, topics.AUDIT)
                    for rec in audit_records(r.value or b"")
                    if rec.delivery_id in delivered
                    and rec.detail
                    and rec.detail.startswith("already delivered")
                }
                if again >= delivered:
                    break
                assert time.monotonic() < deadline, (
                    f"{len(again)} of {len(delivered)} recorded as already delivered"
                )
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # a resend would have arrived by now
            assert Counter(hooks.ids()) == Counter(dict.fromkeys(delivered, 1))
