"""The group-wide safety net: every partition held by exactly one live worker, and moving.

Each worker beats on the workers topic (which partitions it holds, how far it read them)
and follows every worker's beats. One of them (the lowest live id) judges the whole group
with :class:`relay.coverage.Coverage`, adding the group's committed offsets, and when a
partition has been held by nobody, by two workers, or left unread for too long, it forces
a real rebalance: it leaves the group and joins again, so the coordinator must start a new
generation and every member rejoins. A restart would not do: on the embedded broker a
restarted static member rejoins *without* a new generation, the very thing that orphaned a
partition (docs/reliability.md, "Orphaned partitions").

A safety net, not the fix: the fix is dynamic membership on the embedded broker (see
``relay.core.settings.Membership``). The net acting is logged (``rebalance_forced``), counted
(``group.rebalance_forced``) and fails the kill tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord
from mode import Service

from relay.adapters import kafka
from relay.adapters.compat import force_rebalance, group_membership
from relay.adapters.follower import TopicFollower
from relay.core import topics
from relay.core.coverage import Beat, Coverage, Finding, actor
from relay.core.logs import get_logger

if TYPE_CHECKING:
    from relay.runtime.app import Runtime

log = get_logger(__name__)


class GroupWatch(Service):
    def __init__(self, rt: Runtime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rt = rt
        s = rt.settings
        #: Unique per process: a restarted worker is a new one.
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        timing = rt.group_timing
        self.interval = timing.beat
        self.coverage = Coverage(
            partitions={t: s.topic_partitions for t in topics.CONSUMED},
            live_for=3 * timing.beat,
            # A dead member is noticed after its session; a rebalance takes up to its
            # timeout; its last beats stay live for a while.
            grace=timing.session + timing.rebalance + 3 * timing.beat,
            stall=s.stall_timeout,
        )
        self.beats: dict[str, Beat] = {}
        #: What the last check found (for /metrics and the dashboard).
        self.findings: list[Finding] = []
        self.follower = TopicFollower(s, topics.WORKERS, self._apply)
        self._progress_every = max(self.interval, s.stall_timeout / 4)
        self._progress_at = 0.0

    def live(self) -> list[Beat]:
        return self.coverage.live(self.beats.values(), time.time())

    async def on_start(self) -> None:
        await self.add_runtime_dependency(self.follower)
        self.add_future(self._run())

    async def on_stop(self) -> None:
        # Leave the picture at once rather than when the beats go stale.
        try:
            await asyncio.wait_for(self.rt.out.send(topics.WORKERS, self.worker_id, b""), 3)
        except Exception as e:  # stopping anyway
            log.debug("group_watch_goodbye_failed", error=repr(e))

    def _apply(self, msg: ConsumerRecord[bytes, bytes]) -> None:
        key = (msg.key or b"").decode()
        if not msg.value:
            self.beats.pop(key, None)
            return
        data = json.loads(msg.value)
        self.beats[key] = Beat(
            worker=key,
            at=data["at"],
            rebalancing=data["rebalancing"],
            assignment=data["assignment"],
            read={t: {int(p): o for p, o in ps.items()} for t, ps in data["read"].items()},
            generation=data["generation"],
            member_id=data["member_id"],
            seen=time.time(),
        )

    async def _run(self) -> None:
        while not self.should_stop:
            try:
                await self._beat()
                await self._judge()
            except Exception as e:  # never let the net take the worker down
                log.warning("group_watch_failed", error=repr(e))
            await self.sleep(self.interval)

    async def _beat(self) -> None:
        app = self.rt.app
        assignment = self.rt.assignment()
        read: dict[str, dict[int, int]] = {}
        for tp, offset in list(app.monitor.tp_read_offsets.items()):
            if tp.partition in assignment.get(tp.topic, ()):
                read.setdefault(tp.topic, {})[tp.partition] = offset
        generation, member_id = group_membership(app)
        beat = {
            "at": time.time(),
            "pid": os.getpid(),
            "web": self.rt.settings.base_url,
            "rebalancing": bool(app.rebalancing) or generation < 0,
            "generation": generation,
            "member_id": member_id,
            "assignment": assignment,
            "read": read,
        }
        await self.rt.out.send(topics.WORKERS, self.worker_id, json.dumps(beat).encode())

    async def _judge(self) -> None:
        if not self.follower.caught_up.is_set():
            return
        now = time.time()
        progress = None
        if now - self._progress_at >= self._progress_every:
            self._progress_at = now
            s = self.rt.settings
            progress = await kafka.group_progress(s, s.app_id, topics.CONSUMED)
        beats = list(self.beats.values())
        self.findings = findings = self.coverage.check(beats, progress, now)
        if not findings:
            return
        problems = [str(f) for f in findings]
        if actor(self.coverage.live(beats, now)) != self.worker_id:
            log.warning("group_coverage_problem", problems=problems, acting="another worker")
            return
        log.error("rebalance_forced", problems=problems)
        self.rt.counters["group.rebalance_forced"] += 1
        self.coverage.acted(now)
        await force_rebalance(self.rt.app)
