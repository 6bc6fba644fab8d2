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

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as driver

from relay.kafka import true_end_offsets


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
