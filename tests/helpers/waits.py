"""Waits on the broker for integration tests; each fails loudly, naming what it waited for.

``until`` polls a condition of the test's own; ``record_on`` waits for a record to appear;
``wait_consumed`` waits until the worker has handled everything now in some topics (a
barrier before asserting that nothing more came).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from relay.adapters import kafka
from relay.adapters.compat import refresh_metadata
from relay.adapters.kafka import true_end_offsets
from relay.core.settings import Settings


async def until(
    condition: Callable[[], object], *, what: str, timeout: float = 30.0, every: float = 0.05
) -> None:
    """Wait until ``condition()`` is true; fails naming ``what`` was awaited otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not after {timeout:g} s")
        await asyncio.sleep(every)


async def record_on(
    settings: Settings,
    topic: str,
    match: Callable[[kafka.Record], bool],
    *,
    what: str,
    timeout: float = 30.0,
) -> kafka.Record:
    """The first record of ``topic`` (from its beginning) that ``match``es, waiting for it
    up to ``timeout`` seconds; fails with ``what`` was awaited otherwise."""
    found: list[kafka.Record] = []

    def on_record(rec: kafka.Record) -> None:
        if not found and match(rec):
            found.append(rec)

    if not await kafka.follow(settings, topic, on_record, lambda: bool(found), timeout):
        raise AssertionError(f"{what}: nothing on {topic} after {timeout:g} s")
    return found[0]


async def committed_offsets(
    settings: Settings, topics: Iterable[str]
) -> dict[TopicPartition, int | None]:
    """What the worker's consumer group (the app id) has committed on each partition of
    ``topics``.

    A consumer of that group that never subscribes only reads the offsets: it does not join
    the group, so the worker's assignment is left alone.
    """
    peek = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        enable_auto_commit=False,
    )
    await peek.start()
    try:
        await refresh_metadata(peek)
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(peek.partitions_for_topic(topic) or ())
        ]
        return {tp: await peek.committed(tp) for tp in tps}
    finally:
        await peek.stop()


async def wait_consumed(settings: Settings, topics: Iterable[str], timeout: float = 60.0) -> None:
    """Wait until the worker has read and committed every record now in ``topics``.

    A barrier for "nothing more will happen": what was on those topics has been handled
    (an agent commits a record only after handling it). The topics are taken in the order
    given, each once the one before is done, so a chain of agents can be followed:
    ``[DOCUMENTS, ACCEPTED, DELIVER_WEBHOOK]`` covers the deliveries planned from the
    documents published so far.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for topic in topics:
        partitions = await committed_offsets(settings, [topic])
        ends = await true_end_offsets(settings.bootstrap_servers, partitions)
        while True:
            committed = await committed_offsets(settings, [topic])
            behind = {
                tp.partition: (committed[tp], end)
                for tp, end in ends.items()
                if (committed[tp] or 0) < end
            }
            if not behind:
                break
            if loop.time() > deadline:
                raise AssertionError(
                    f"the worker did not commit past the records in {topic} within "
                    f"{timeout:g} s; (committed, end) by partition still behind: {behind}"
                )
            await asyncio.sleep(0.3)
