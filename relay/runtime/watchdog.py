"""Watching the worker's own consumer: records waiting, yet nothing read for too long.

A restarted worker was seen to stop fetching some partitions for good (a Faust recovery
race, fixed in ``relay/adapters/compat.py``). A stuck worker is worse than a dead one, because
nothing restarts it: so the watchdog, kept as a safety net, marks the worker unhealthy
(``/healthz`` answers 503) and then stops it, for its supervisor (``relay dev``/``relay
demo``, systemd, Kubernetes) to start it again.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any

from mode import Service

from relay.adapters.compat import committed_at_start
from relay.adapters.kafka import true_end_offsets
from relay.core import topics
from relay.core.logs import get_logger
from relay.core.stats import PartitionProgress

if TYPE_CHECKING:
    from relay.runtime.app import Runtime

log = get_logger(__name__)

#: The topics agents read; changelogs and the leader topic are not watched.
WATCHED = topics.CONSUMED


class Watchdog(Service):
    def __init__(self, rt: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rt = rt
        self.stalled: str | None = None
        #: (topic, partition) → (read offset, since when it has not moved)
        self._seen: dict[tuple[str, int], tuple[int | None, float]] = {}

    async def on_start(self) -> None:
        self.add_future(self._watch())

    async def _watch(self) -> None:
        interval = min(5.0, self.rt.settings.stall_timeout / 4)
        while not self.should_stop:
            await self.sleep(interval)
            try:
                await self._check()
            except Exception as e:  # never let the watchdog take the worker down by mistake
                log.warning("watchdog_check_failed", error=repr(e))

    async def _check(self) -> None:
        progress = await consumer_progress(self.rt)
        if progress is None:
            self._seen.clear()
            return
        now = time.monotonic()
        for p in progress:
            tp = (p.topic, p.partition)
            last, since = self._seen.get(tp, (None, now))
            if p.waiting <= 0 or p.done != last:
                self._seen[tp] = (p.done, now)
                continue
            if now - since >= self.rt.settings.stall_timeout:
                self.stalled = (
                    f"{p.topic}[{p.partition}]: {p.waiting} records waiting, "
                    f"nothing read for {now - since:.0f}s"
                )
                log.error("consumer_stalled", detail=self.stalled)
                # A clean stop: commits what was done; the supervisor starts a new worker.
                os.kill(os.getpid(), signal.SIGTERM)
                return


async def consumer_progress(rt: Runtime) -> list[PartitionProgress] | None:
    """Where the worker's consumer is in each watched partition it holds; None mid-rebalance.

    The end offsets come from a short-lived client of their own (fetch high watermarks,
    right on the embedded broker too); what was done, from Faust's monitor: the offset
    last read by a stream, or below the last commit.
    """
    app = rt.app
    if app.rebalancing:
        return None
    tps = [tp for tp in app.consumer.assignment() if tp.topic in WATCHED]
    if not tps:
        return []
    servers = rt.settings.bootstrap_servers.split(",")
    ends = await true_end_offsets(servers, tps)
    read = app.monitor.tp_read_offsets
    # The monitor only knows the offsets this worker committed itself; the consumer also
    # knows those it started from (read back from the group after assignment). Without
    # them, a partition with nothing new since a restart would look stuck.
    committed = app.monitor.tp_committed_offsets
    started_from = committed_at_start(app)
    return [
        PartitionProgress(
            topic=tp.topic,
            partition=tp.partition,
            end=ends.get(tp, 0),
            done=max(
                read.get(tp, -1),
                committed.get(tp, 0) - 1,
                (started_from.get(tp) or 0) - 1,
            ),
        )
        for tp in sorted(tps)
    ]
