"""Is every partition of the agents' topics held by exactly one live worker, and moving? Pure.

Every worker says, a few times a minute, which partitions its consumer holds and how far it
read them (a :class:`Beat` on the workers topic). From the beats of all workers and the
group's committed offsets, :class:`Coverage` finds the partitions that are held by nobody,
held by two workers, or have records waiting that nobody reads — for longer than a normal
rebalance takes. The group watch (``relay/runtime/group_watch.py``) then forces a rebalance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from relay.core.stats import PartitionProgress

TP = tuple[str, int]


@dataclass(frozen=True)
class Beat:
    """One worker's report of its place in the consumer group."""

    worker: str
    #: When the worker sent it (its clock, epoch seconds).
    at: float
    #: The consumer is between revoking and being assigned partitions.
    rebalancing: bool
    #: Partitions held, by topic.
    assignment: Mapping[str, list[int]]
    #: The last offset read by the agents, by topic, then partition.
    read: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    generation: int = -1
    member_id: str = ""
    #: When this worker's follower applied it (its clock): a beat read back from history
    #: after a restart is not a sign of life.
    seen: float = 0.0


@dataclass(frozen=True)
class Finding:
    topic: str
    partition: int
    problem: str

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}] {self.problem}"


@dataclass
class Coverage:
    """Tracks each partition's trouble over time; reports what lasted too long.

    ``partitions``: topic → partition count. ``live_for``: a worker is live while its last
    beat is this recent. ``grace``: how long a partition may be held by no worker (or by
    two) before it is a finding — longer than a dead member's session plus a rebalance.
    ``stall``: how long records may wait with neither the group's committed offset nor
    the holder's read position moving — never less than ``grace``, since the partitions
    of a worker that died are rightly still until the group has noticed and rebalanced.
    """

    partitions: Mapping[str, int]
    live_for: float
    grace: float
    stall: float
    #: Beats whose own time is this far from the reader's clock are not trusted as live.
    max_skew: float = 30.0
    _held_wrong_since: dict[TP, float] = field(default_factory=dict)
    _still: dict[TP, tuple[tuple[int, int], float]] = field(default_factory=dict)
    _quiet_until: float = 0.0

    def live(self, beats: Iterable[Beat], now: float) -> list[Beat]:
        return [
            b
            for b in beats
            if now - b.seen <= self.live_for and abs(now - b.at) <= self.live_for + self.max_skew
        ]

    def check(
        self, beats: Iterable[Beat], progress: Iterable[PartitionProgress] | None, now: float
    ) -> list[Finding]:
        """What has been wrong for too long, given the latest beat of each worker and,
        when it was read this time, the group's progress."""
        live = self.live(beats, now)
        if now < self._quiet_until or not live or any(b.rebalancing for b in live):
            # A rebalance settles who holds what: judge only what outlasts it.
            self._held_wrong_since.clear()
            self._still.clear()
            return []
        holders: dict[TP, list[str]] = {}
        reads: dict[TP, int] = {}
        for b in live:
            for topic, parts in b.assignment.items():
                for p in parts:
                    holders.setdefault((topic, p), []).append(b.worker)
            for topic, offsets in b.read.items():
                for p, offset in offsets.items():
                    reads[(topic, p)] = max(reads.get((topic, p), -1), offset)
        findings: list[Finding] = []
        for topic, count in sorted(self.partitions.items()):
            for p in range(count):
                who = holders.get((topic, p), [])
                if len(who) == 1:
                    self._held_wrong_since.pop((topic, p), None)
                    continue
                since = self._held_wrong_since.setdefault((topic, p), now)
                if now - since >= self.grace:
                    problem = f"held by {', '.join(sorted(who))}" if who else "held by no worker"
                    findings.append(Finding(topic, p, f"{problem} for {now - since:.0f}s"))
        for pp in progress or ():
            tp = (pp.topic, pp.partition)
            if pp.waiting <= 0:
                self._still.pop(tp, None)
                continue
            mark = (pp.done, reads.get(tp, -1))
            last = self._still.get(tp)
            if last is None or last[0] != mark:
                self._still[tp] = (mark, now)
                continue
            if now - last[1] >= max(self.stall, self.grace):
                findings.append(
                    Finding(
                        pp.topic,
                        pp.partition,
                        f"{pp.waiting} records waiting, nothing committed or read for "
                        f"{now - last[1]:.0f}s",
                    )
                )
        return findings

    def acted(self, now: float) -> None:
        """A rebalance was forced: start judging afresh once it has had time to settle."""
        self._held_wrong_since.clear()
        self._still.clear()
        self._quiet_until = now + self.grace


def actor(beats: Iterable[Beat]) -> str | None:
    """The one worker that acts on findings (the lowest id among the live), so that two
    workers never force a rebalance each for the same trouble."""
    return min((b.worker for b in beats), default=None)
