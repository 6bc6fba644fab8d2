"""Workarounds in Faust for two behaviours of the embedded Tansu broker (dev profile only).

1. A fetch is answered only when its wait runs out, never early when a record arrives, and
   Faust hard-codes a 1.5 s wait: every hop between agents would add up to 1.5 s.
2. ListOffsets ("latest") answers the base offset of the last record batch + 1, not the
   end of the partition. Faust's table recovery reads changelogs up to that offset only,
   so a restarted worker would lose table entries written in batches (parked retries
   among them). The high watermark in fetch responses is right, so ask for that instead.

Apache Kafka does neither, so production keeps Faust as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as driver


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


def apply(fetch_wait_ms: int) -> None:
    """Patch Faust's aiokafka consumer thread, once per process."""
    thread: Any = driver.AIOKafkaConsumerThread
    if getattr(thread, "_relay_patched", False):
        return
    create_original = thread._create_worker_consumer

    def create(self: Any, transport: Any) -> Any:
        consumer = create_original(self, transport)
        consumer._fetch_max_wait_ms = fetch_wait_ms  # read when the consumer starts
        return consumer

    async def highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        servers = driver.server_list(self.transport.url, self.transport.default_port)
        return await true_end_offsets(servers, partitions)

    thread._create_worker_consumer = create
    thread._highwaters = highwaters
    thread._relay_patched = True
