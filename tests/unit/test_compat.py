"""The compatibility module (relay/adapters/compat.py): its start-up check, and the Faust
fixes: the fetch never reads an empty set of active
partitions as "all of them"; recovery seeks before resuming the stream partitions, and
nothing runs in between resuming them, clearing the queues and turning the flow on; a
partition the group never committed is sought to its beginning."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import pytest

from relay.adapters import compat
from relay.core.errors import ConfigError

#: The Faust methods the fix replaces, as written in faust-streaming 0.15.3. When Faust
#: changes them, check whether the race is still there and whether the copies still fit.
UPSTREAM = {
    "on_recovery_completed": "6ef567acf072e46d",
    "_resume_streams": "d986a6710c1aca98",
    "_fetch_records": "39a2c6c79fc1455a",
    "perform_seek": "0e8c130ff4b0afd8",
}


def test_the_replaced_faust_methods_are_the_ones_the_fix_was_written_for() -> None:
    got = {
        name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
        for name, fn in compat.ORIGINALS.items()
    }
    assert got == UPSTREAM == compat.UPSTREAM


def test_the_installed_faust_and_aiokafka_have_everything_the_relay_uses() -> None:
    assert compat.problems() == []
    compat.check()


def test_a_member_gone_stops_the_worker_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faust.transport.drivers.aiokafka import Producer

    monkeypatch.delattr(Producer, "_ensure_producer")
    with pytest.raises(ConfigError) as info:
        compat.check()
    message = str(info.value)
    assert "\n" not in message
    assert "faust.transport.drivers.aiokafka.Producer._ensure_producer is gone" in message


def test_a_copied_method_changed_upstream_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def changed(self: Any, generation_id: int = 0) -> None:
        """Not the method the fix copied."""

    monkeypatch.setitem(compat.ORIGINALS, "_resume_streams", changed)
    with pytest.raises(ConfigError, match="changed upstream"):
        compat.check()


def test_a_release_not_tested_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(compat.TESTED, "aiokafka", ("9.",))
    with pytest.raises(ConfigError, match=r"aiokafka 0\.\d+\.\d+ \(tested: \('9\.',\)\)"):
        compat.check()


async def test_no_active_partition_fetches_nothing_instead_of_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []

    async def original(
        self: Any, consumer: Any, active: Any, timeout: Any = None, max_records: Any = None
    ) -> dict[str, str]:
        seen.append(active)
        return {"records": "of " + ",".join(sorted(active or ["everything"]))}

    monkeypatch.setitem(compat.ORIGINALS, "_fetch_records", original)
    live = {"a"}
    assert await compat._fetch_records(None, None, live, timeout=1.0) == {"records": "of a"}
    live.discard("a")  # Faust pauses the partition; a snapshot was passed on
    assert seen == [frozenset({"a"})]
    assert await compat._fetch_records(None, None, live, timeout=1.0) == {}
    assert len(seen) == 1  # aiokafka was not asked, so it could not drain every partition
    assert await compat._fetch_records(None, None, None) == {"records": "of everything"}


async def test_a_partition_the_group_never_committed_is_sought_to_its_beginning() -> None:
    """Race 3: aiokafka seeks only committed offsets above 0, so records dropped while the
    flow was off would never be read again in a partition the group never committed."""
    from aiokafka import TopicPartition

    fresh, zero = TopicPartition("documents.published", 4), TopicPartition("relay.retry", 0)
    done, changelog = TopicPartition("relay.audit", 1), TopicPartition("a-ledger-changelog", 4)
    committed = {fresh: None, zero: 0, done: 7, changelog: None}
    sought: list[Any] = []
    consumer = SimpleNamespace(
        _read_offset={},
        _committed_offset={},
        seek_to_committed=AsyncMock(return_value=committed),
        _thread=SimpleNamespace(
            seek_to_beginning=AsyncMock(side_effect=lambda *tps: sought.extend(tps))
        ),
        app=SimpleNamespace(tables=SimpleNamespace(changelog_topics={changelog.topic})),
    )
    await compat.perform_seek(consumer)
    # The changelogs are recovery's business; the committed partition was sought by aiokafka.
    assert sorted(sought) == sorted([fresh, zero])
    # What Faust itself keeps is as before: read offsets, and the committed ones it knows.
    assert consumer._read_offset == {fresh: None, zero: 0, done: 7, changelog: None}
    assert {(tp.topic, tp.partition): o for tp, o in consumer._committed_offset.items()} == {
        ("relay.retry", 0): None,
        ("relay.audit", 1): 7,
    }


async def test_nothing_is_sought_to_the_beginning_when_every_partition_was_committed() -> None:
    from aiokafka import TopicPartition

    tp = TopicPartition("documents.published", 0)
    consumer = SimpleNamespace(
        _read_offset={},
        _committed_offset={},
        seek_to_committed=AsyncMock(return_value={tp: 3}),
        _thread=SimpleNamespace(seek_to_beginning=AsyncMock()),
        app=SimpleNamespace(tables=SimpleNamespace(changelog_topics=set())),
    )
    await compat.perform_seek(consumer)
    consumer._thread.seek_to_beginning.assert_not_awaited()
    assert consumer._read_offset == {tp: 3}


def _recovery(order: list[str]) -> Any:
    stream_tp, changelog_tp = ("relay.deliveries.webhook", 0), ("app-ledger-changelog", 0)

    async def perform_seek() -> None:
        order.append("seek:start")
        for _ in range(5):  # a few round trips to the broker
            await asyncio.sleep(0)
        order.append("seek:done")

    async def wait(coro: Any, timeout: float | None = None) -> None:
        await coro

    consumer = MagicMock()
    consumer.assignment.return_value = {stream_tp, changelog_tp}
    consumer.perform_seek = perform_seek
    consumer.resume_partitions.side_effect = lambda tps: order.append(
        "resume_partitions:" + ",".join(sorted(t[0] for t in tps))
    )
    consumer.resume_flow.side_effect = lambda: order.append("resume_flow")
    flow_control = MagicMock()
    flow_control.resume.side_effect = lambda: order.append("flow_control.resume")
    app = SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=3,
        conf=SimpleNamespace(broker_request_timeout=5),
        on_rebalance_complete=SimpleNamespace(send=AsyncMock()),
        flow_control=flow_control,
        _fetcher=SimpleNamespace(maybe_start=AsyncMock()),
        assignor=SimpleNamespace(assigned_standbys=lambda: set()),
        on_rebalance_end=MagicMock(),
    )
    return SimpleNamespace(
        app=app,
        log=MagicMock(),
        tables=MagicMock(values=list),
        actives_for_table={},
        standbys_for_table={},
        completed=asyncio.Event(),
        _set_recovery_ended=MagicMock(),
        _wait=wait,
        _is_changelog_tp=lambda tp: tp[0].endswith("-changelog"),
    )


@pytest.mark.parametrize("method", ["on_recovery_completed", "_resume_streams"])
async def test_stream_partitions_are_resumed_only_after_the_seek(method: str) -> None:
    order: list[str] = []
    recovery = _recovery(order)

    async def fetch_loop() -> None:  # stands for Faust's fetcher, running meanwhile
        while True:
            order.append("fetch")
            await asyncio.sleep(0)

    fetcher = asyncio.create_task(fetch_loop())
    await asyncio.sleep(0)
    try:
        await getattr(compat, method)(recovery, generation_id=3)
    finally:
        fetcher.cancel()
    steps = [s for s in order if s != "fetch"]
    assert steps == [
        "seek:start",
        "seek:done",
        "resume_partitions:relay.deliveries.webhook",
        "flow_control.resume",
        "resume_flow",
    ]
    # The fetch loop ran during the seek, but never between resuming the partitions and
    # turning the flow on: nothing it hands over can be cleared away.
    i = order.index("resume_partitions:relay.deliveries.webhook")
    assert order[i : i + 3] == steps[2:]
    assert "fetch" in order[order.index("seek:start") : order.index("seek:done")]
    assert recovery.completed.is_set()


async def test_a_new_rebalance_during_the_seek_resumes_nothing() -> None:
    order: list[str] = []
    recovery = _recovery(order)

    async def seek_then_rebalance() -> None:
        order.append("seek")
        recovery.app.consumer_generation_id = 4

    recovery.app.consumer.perform_seek = seek_then_rebalance
    await compat.on_recovery_completed(recovery, generation_id=3)
    assert order == ["seek"]
    assert not recovery.completed.is_set()


def test_install_applies_the_fixes_once() -> None:
    from faust.tables.recovery import Recovery
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    compat.install(embedded_broker=False, fetch_wait_ms=50)
    compat.install(embedded_broker=False, fetch_wait_ms=50)
    assert Recovery.on_recovery_completed is compat.on_recovery_completed
    assert Recovery._resume_streams is compat._resume_streams
    assert AIOKafkaConsumerThread._fetch_records is compat._fetch_records
    from faust.transport.consumer import Consumer

    assert Consumer.perform_seek is compat.perform_seek
