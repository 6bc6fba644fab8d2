"""Writing to the relay's topics: one record, many, or delivery intents bundled per partition."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TopicT

from relay.adapters.compat import partitions_for
from relay.core.models import INTENT_JSON, DeliveryIntent, fit

#: Intents of one partition written as one value, at most (about 1 kB each).
INTENT_BUNDLE = 25
_PARTITIONER = DefaultPartitioner()


def intents_value(chunk: Sequence[tuple[str, DeliveryIntent | dict[str, Any]]]) -> bytes:
    """One intent as itself; several as ``{"intents": [...]}`` (see IntentBundle)."""
    if len(chunk) == 1:
        return INTENT_JSON.dump_json(chunk[0][1], exclude_none=True)
    return INTENT_JSON.dump_json({"intents": [i for _, i in chunk]}, exclude_none=True)


class Producer:
    """Produces to the app's topics (raw bytes) and waits for the broker's acknowledgement."""

    def __init__(self, app: faust.App, topics: dict[str, TopicT]) -> None:
        self.app = app
        self.topics = topics

    async def send(self, topic: str, key: str | None, value: bytes) -> tuple[int, int]:
        """Produce, wait for the broker's acknowledgement, and return (partition, offset)."""
        fut = await self.topics[topic].send(
            key=key.encode() if key is not None else None, value=value
        )
        meta = await fut
        return meta.partition, meta.offset

    async def send_many(self, topic: str, records: list[tuple[str | None, bytes]]) -> None:
        """Produce many records and wait until the broker has every one."""
        futures = [
            await self.topics[topic].send(key=k.encode() if k is not None else None, value=v)
            for k, v in records
        ]
        await asyncio.gather(*futures)

    async def send_intents(
        self, topic: str, intents: Sequence[DeliveryIntent | dict[str, Any]]
    ) -> None:
        """Produce intents, bundled per partition (see IntentBundle).

        Each intent goes to the partition its partner id hashes to (Kafka's default
        partitioner, as for a keyed record), so a partner's deliveries stay in one
        partition whether they come bundled or, as retries do, one by one. An intent may
        be a model or its JSON-ready form (:func:`relay.core.models.first_attempt`). A
        bundle holds up to INTENT_BUNDLE intents, within MAX_BUNDLE_BYTES (retries carry
        the whole document).
        """
        partitions = await partitions_for(self.app, topic)
        by_partition: dict[int, list[tuple[str, DeliveryIntent | dict[str, Any]]]] = {}
        for i in intents:
            partner_id = i["ref"]["partner_id"] if isinstance(i, dict) else i.partner_id
            p = _PARTITIONER(partner_id.encode(), partitions, partitions)
            by_partition.setdefault(p, []).append((partner_id, i))
        channel = self.topics[topic]
        futures = []
        for p, group in by_partition.items():
            for k in range(0, len(group), INTENT_BUNDLE):
                for part, value in fit(group[k : k + INTENT_BUNDLE], intents_value):
                    key = part[0][0].encode() if len(part) == 1 else None
                    futures.append(await channel.send(key=key, value=value, partition=p))
        await asyncio.gather(*futures)
