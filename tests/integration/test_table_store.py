"""RELAY_TABLE_STORE=rocksdb://, as the Docker image runs it: a worker on the embedded broker
keeps its tables in RocksDB under RELAY_DATA_DIR, delivers through them, and finds them on
disk again after a restart (with the changelog offset it reached, so it reads only what
was written since)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import rocksdict

from relay.adapters import kafka
from relay.core import topics
from relay.core.models import Partner, audit_records
from relay.core.settings import Settings, TableStore
from relay.core.settling import Progress
from relay.core.signing import new_secret
from relay.embedded.broker import free_port, stop_process
from relay.embedded.stack import Stack
from relay.runtime.app import faust_datadir
from tests.helpers.receivers import WebhookReceiver
from tests.integration.test_faults import REGION, TAG, fault_event

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

#: Faust's key of the changelog offset a partition's database holds.
OFFSET_KEY = b"__faust\0offset__"


def ledger_databases(settings: Settings) -> list[Path]:
    found = sorted(faust_datadir(settings).rglob("*ledger*.db"))
    return [p for p in found if p.is_dir()]


def read_database(path: Path) -> dict[bytes, bytes]:
    """Every key and value of a RocksDB database, opened read-only (the worker is stopped)."""
    options = rocksdict.Options(raw_mode=True)
    db = rocksdict.Rdict(str(path), options=options, access_type=rocksdict.AccessType.read_only())
    try:
        return dict(cast(Any, db.items()))
    finally:
        db.close()


def ledger_entry(settings: Settings, delivery_id: str) -> tuple[dict[str, object], int, int | None]:
    """The delivery's ledger entry as RocksDB holds it, the partition, and the changelog
    offset Faust resumes that partition from (the last it wrote into the database)."""
    for path in ledger_databases(settings):
        data = read_database(path)
        for key, value in data.items():
            if key != OFFSET_KEY and json.loads(key) == delivery_id:
                partition = int(path.name.rsplit("-", 1)[1].removesuffix(".db"))
                offset = int(data[OFFSET_KEY]) if OFFSET_KEY in data else None
                return json.loads(value), partition, offset
    raise AssertionError(f"{delivery_id} in no ledger database of {ledger_databases(settings)}")


async def stop_worker(stack: Stack) -> None:
    proc, stack.worker = stack.worker, None  # so the stack's supervisor leaves it stopped
    await asyncio.to_thread(stop_process, proc, 15)


async def test_a_worker_on_rocksdb_delivers_and_finds_its_ledger_on_disk_after_a_restart(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    async with WebhookReceiver({"/rocks": secret}) as hooks:
        partner = Partner.model_validate(
            {
                "id": "rocks-park",
                "kind": "park",
                "name": "RocksDB 表存储测试园区",
                "coverage": {"regions": [REGION], "parks": ["rocks"]},
                "interests": {"tags_any": [TAG]},
                "channels": [{"type": "webhook", "url": hooks.url_for("/rocks"), "secret": secret}],
            }
        )
        settings = Settings(
            app_id=f"relay-rocks-{uuid.uuid4().hex[:8]}",
            web_port=free_port(),
            data_dir=tmp_path,
            table_store=TableStore.rocksdb,
            link_secret="test-link-secret",
        )
        stack = Stack(settings, [partner], run_dir=tmp_path, broker_port=free_port())
        async with stack:
            ws = stack.worker_settings
            assert ws is not None and ws.table_store == TableStore.rocksdb
            event = fault_event("rocks")
            progress = Progress([event["event_id"]])

            def on_record(rec: kafka.Record) -> None:
                for r in audit_records(rec.value or b""):
                    progress.add(r)

            await kafka.produce(
                ws,
                [(topics.DOCUMENTS, event["document"]["id"], json.dumps(event).encode())],
            )
            assert await kafka.follow(ws, topics.AUDIT, on_record, lambda: progress.settled, 90)
            (received,) = await hooks.wait_for(1, timeout=30)
            delivery_id = received.headers["webhook-id"]

            await stop_worker(stack)
            entry, partition, offset = ledger_entry(ws, delivery_id)
            assert entry["status"] == "delivered"
            # The database holds the changelog up to its last record: a restarted worker
            # starts reading it there, not from the beginning.
            changelog = await kafka.read_topic(ws, f"{ws.app_id}-ledger-changelog")
            last = max(r.offset for r in changelog if r.partition == partition)
            assert offset == last

            # Started again on the same data directory: it opens the same databases (a
            # second process would find them locked), and the entry is still there.
            stack.start_worker()
            await stack.wait_ready()
            await stop_worker(stack)
            entry, _, after = ledger_entry(ws, delivery_id)
            assert entry["status"] == "delivered" and after == offset
            assert "worker exited" not in stack.worker_log.read_text()
