"""Fixes for two races in faust-streaming 0.15 that lose or strand records after a restart.

Applied in every profile: both races are Faust's (with aiokafka), not the embedded broker's.
Both happen when a worker starts (or rebalances) while its stream partitions hold records:
aiokafka prefetches every assigned partition during table recovery, paused or not.

**1. An empty set of active partitions means "all of them".** Faust's fetch loop hands its
live set of active partitions to the consumer thread, where aiokafka's
``Fetcher.fetched_records(partitions)`` waits up to a second for records and, on each
wake-up, drains every buffered partition when ``partitions`` is empty. At the end of
recovery Faust pauses the changelog partitions while the stream partitions are still
paused: the set becomes empty during that wait, aiokafka drains the prefetched stream
records, and Faust drops them because their partitions are not active. Their fetch
position is now at the end: the partition *stalls* (records waiting, nothing read, the
committed offset unchanged). Fixed by giving aiokafka a snapshot of the set, and nothing to
do when it is empty.

**2. Resuming stream partitions before seeking them** (``faust/tables/recovery.py``).
After table recovery, ``Recovery.on_recovery_completed`` does, in this order:

1. ``consumer.resume_partitions(stream partitions)``, so the fetch loop may now hand their
   records to the agents' channel queues (flow is already on since the changelogs were read);
2. ``await consumer.perform_seek()``, one OffsetFetch per assigned partition, which takes
   long enough for the fetch loop to run (aiokafka has prefetched those partitions during
   recovery, so their records are ready at once);
3. ``app.flow_control.resume()``, which *clears every channel queue*.

Records handed over during step 2 are dropped in step 3, unacked, while Faust's read
offset and aiokafka's fetch position have already moved past them. What follows depends on
which finished first, the hand-over or the seek of that partition:

* the partition is not read again (its position is at the end): it *stalls*, with records
  waiting and its committed offset unchanged (or empty when the previous worker never
  committed, since ``perform_seek`` does not seek partitions without a committed offset);
* or the seek set the read offset back while the fetch loop was still yielding the batch:
  the next record seen is more than one past the read offset, Faust records the range as a
  gap (``Consumer._add_gap``), and gaps count as acknowledged, so the commit moves past
  records no agent ever saw: they are *lost*; the re-fetched copies are then dropped as
  older than the read offset ("DROPPED MESSAGE ROFF").

Upstream: faust-streaming#596 describes this family (queue clearing after recovery leaves
gaps); #217 fixed the same ordering in ``_resume_streams`` only partly.

Fixed by seeking *before* resuming the stream partitions, then resuming them, clearing the
queues and turning the flow on without awaiting in between, so the fetch loop cannot hand
anything over that the clearing would drop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

#: The Faust methods replaced (the first two as whole copies) or wrapped (the last one).
ORIGINALS: dict[str, Callable[..., Any]] = {
    "on_recovery_completed": Recovery.on_recovery_completed,
    "_resume_streams": Recovery._resume_streams,
    "_fetch_records": AIOKafkaConsumerThread._fetch_records,
}


async def _fetch_records(
    self: Any,
    consumer: Any,
    active_partitions: Any,
    timeout: float | None = None,
    max_records: int | None = None,
) -> Any:
    """Fetch only what is active now, and nothing when nothing is (race 1)."""
    if active_partitions is not None:
        # Faust passes its live set, which the event loop thread changes meanwhile.
        active_partitions = frozenset(active_partitions)
        if not active_partitions:
            return {}  # aiokafka would read "every partition"
    return await ORIGINALS["_fetch_records"](
        self, consumer, active_partitions, timeout=timeout, max_records=max_records
    )


async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """``Recovery.on_recovery_completed`` of faust-streaming 0.15.3, seek moved first (race 2)."""
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table],
                self.standbys_for_table[table],
            )
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    if not await _seek_then_resume(self, generation_id):
        return
    # finally make sure the fetcher is running.
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _resume_streams(self: Any, generation_id: int = 0) -> None:
    """``Recovery._resume_streams`` (apps without tables), seek moved first."""
    await self.app.on_rebalance_complete.send()
    if not await _seek_then_resume(self, generation_id):
        return
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _seek_then_resume(self: Any, generation_id: int) -> bool:
    """Seek the stream partitions, then resume them; False if a rebalance came meanwhile."""
    if not _same_generation(self, generation_id):
        return False
    consumer = self.app.consumer
    if consumer.assignment():
        # Still paused for the fetch loop: nothing of theirs reaches a queue meanwhile.
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        if not _same_generation(self, generation_id):
            return False
    else:
        self.log.info("Resuming streams with empty assignment")
    _resume_stream_partitions(self)
    return True


def _same_generation(self: Any, generation_id: int) -> bool:
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(
            f"Recovery rebalancing again app id "
            f"{self.app.consumer_generation_id} param {generation_id}"
        )
        return False
    return True


def _resume_stream_partitions(self: Any) -> None:
    """Resume the stream partitions, clear the queues, start the flow: no await inside."""
    consumer = self.app.consumer
    consumer.resume_partitions(
        {tp for tp in consumer.assignment() if not self._is_changelog_tp(tp)}
    )
    self.completed.set()
    self.log.dev("Resume stream partitions")
    self.app.flow_control.resume()  # clears the channel queues
    consumer.resume_flow()


def apply() -> None:
    """Install both fixes, once per process."""
    if getattr(Recovery, "_relay_fixed", False):
        return
    Recovery.on_recovery_completed = on_recovery_completed  # type: ignore[method-assign]
    Recovery._resume_streams = _resume_streams  # type: ignore[method-assign]
    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
    Recovery._relay_fixed = True  # type: ignore[attr-defined]
