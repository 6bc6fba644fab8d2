"""Thin aiokafka helpers for commands outside the worker: create topics, produce, read a topic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from relay.adapters.compat import refresh_metadata
from relay.core import topics
from relay.core.errors import RelayError
from relay.core.settings import Settings
from relay.core.stats import PartitionProgress


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def _unreachable(settings: Settings, e: Exception) -> RelayError:
    hint = " (is `relay dev` running?)" if settings.broker_url is None else ""
    return RelayError(f"cannot reach the broker at {settings.broker}{hint}: {e}")


async def ensure_topics(settings: Settings) -> None:
    """Create every relay topic that does not exist yet, with its partition count.

    Declaring them up front matters on the embedded broker, which auto-creates unknown
    topics with 4 partitions on first mention.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=10_000
    )
    try:
        await admin.start()
    except KafkaError as e:
        raise _unreachable(settings, e) from e
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions or settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=dict(spec.config),
            )
            for spec in topics.ALL
            if spec.name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created them first
    finally:
        await admin.close()


async def produce(
    settings: Settings, records: Iterable[tuple[str, str | None, bytes | None]]
) -> None:
    """Send (topic, key, value) records and wait until the broker has every one."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", request_timeout_ms=15_000
    )
    try:
        await producer.start()
    except KafkaConnectionError as e:
        await producer.stop()
        raise _unreachable(settings, e) from e
    try:
        futures = [
            await producer.send(topic, value=value, key=key.encode() if key is not None else None)
            for topic, key, value in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _reader(settings: Settings, topic: str) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started group-less consumer assigned every partition of ``topic``, at the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    try:
        await consumer.start()
        await refresh_metadata(consumer)
    except KafkaConnectionError as e:
        await consumer.stop()
        raise _unreachable(settings, e) from e
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    if tps:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
    return consumer, tps


def _record(m: ConsumerRecord[bytes, bytes]) -> Record:
    return Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)


async def read_topic(settings: Settings, topic: str, timeout: float = 15.0) -> list[Record]:
    """Every record of ``topic`` from the beginning up to its current end."""
    consumer, tps = await _reader(settings, topic)
    try:
        if not tps:
            return []
        # The embedded broker's ListOffsets answers the base offset of the last batch + 1,
        # not the true end, so read until the highwater mark that fetch responses carry.
        out: list[Record] = []
        remaining = set(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while remaining:
            if loop.time() > deadline:
                raise RelayError(f"timed out reading {topic}")
            batch = await consumer.getmany(*remaining, timeout_ms=200)
            for msgs in batch.values():
                out.extend(_record(m) for m in msgs)
            for tp in list(remaining):
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


async def follow(
    settings: Settings,
    topic: str,
    on_record: Callable[[Record], None],
    until: Callable[[], bool],
    timeout: float,
) -> bool:
    """Feed every record of ``topic`` (from the beginning) to ``on_record`` until ``until()``.

    Returns False if ``timeout`` seconds pass first.
    """
    consumer, _ = await _reader(settings, topic)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not until():
            if loop.time() > deadline:
                return False
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for m in msgs:
                    on_record(_record(m))
        return True
    finally:
        await consumer.stop()


async def true_end_offsets(
    bootstrap_servers: str | list[str], partitions: Iterable[Any], timeout: float = 10.0
) -> dict[Any, int]:
    """The end offset of each (topic, partition), from fetch high watermarks."""
    tps = {TopicPartition(tp.topic, tp.partition): tp for tp in partitions}
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=1024,
    )
    await consumer.start()
    try:
        consumer.assign(list(tps))
        listed = await consumer.end_offsets(list(tps))  # a lower bound here
        for tp in tps:
            consumer.seek(tp, max(listed[tp] - 1, 0))
        remaining = set(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while remaining and loop.time() < deadline:
            await consumer.getmany(*remaining, timeout_ms=100, max_records=1)
            remaining = {tp for tp in remaining if consumer.highwater(tp) is None}
        return {
            original: max(consumer.highwater(tp) or 0, listed[tp]) for tp, original in tps.items()
        }
    finally:
        await consumer.stop()


async def group_progress(
    settings: Settings, group: str, names: Iterable[str]
) -> list[PartitionProgress]:
    """How far the consumer group got in every partition of ``names``: its committed
    offsets (what it finished) against the partitions' true end offsets."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=10_000
    )
    try:
        await admin.start()
    except KafkaError as e:
        raise _unreachable(settings, e) from e
    try:
        described = await admin.describe_topics(sorted(names))
        tps = [
            TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
        ]
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    ends = await true_end_offsets(settings.bootstrap_servers, tps)
    return [
        PartitionProgress(
            topic=tp.topic,
            partition=tp.partition,
            end=ends.get(tp, 0),
            # -1 = nothing committed yet: nothing done.
            done=max(committed[tp].offset, 0) - 1 if tp in committed else -1,
        )
        for tp in sorted(tps)
    ]
