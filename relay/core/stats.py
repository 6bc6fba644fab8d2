"""Pure arithmetic of the operator dashboard: rolling rates and consumer lag by topic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


class RateWindow:
    """Counts per key over the last ``span`` seconds, in one-second buckets.

    Times are epoch seconds given by the caller (the records' own timestamps), so the window
    can be fed out of order and read at any "now"; buckets older than ``span`` seconds before
    the newest one seen are dropped, so memory stays bounded whatever was folded before.
    """

    def __init__(self, span: int = 60) -> None:
        if span < 1:
            raise ValueError(f"span must be at least 1 second, got {span}")
        self.span = span
        self._buckets: dict[int, Counter[str]] = {}
        self._newest = 0

    def add(self, at: float, key: str, n: int = 1) -> None:
        second = int(at)
        if second <= self._newest - self.span:
            return  # already out of any window that can still be read
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = Counter()
            if second > self._newest:
                self._newest = second
                self._prune()
        bucket[key] += n

    def _prune(self) -> None:
        oldest = self._newest - self.span
        for second in [s for s in self._buckets if s <= oldest]:
            del self._buckets[second]

    def _seconds(self, now: float) -> range:
        """The ``span`` whole seconds up to and including the one ``now`` falls in."""
        last = int(now)
        return range(last - self.span + 1, last + 1)

    def counts(self, now: float) -> Counter[str]:
        """Per key, how many in the window ending at ``now``."""
        total: Counter[str] = Counter()
        for second in self._seconds(now):
            bucket = self._buckets.get(second)
            if bucket:
                total.update(bucket)
        return total

    def series(self, now: float, keys: Iterable[str] | None = None) -> list[int]:
        """Per second, oldest first (``span`` values): the count of ``keys`` (default: all)."""
        wanted = set(keys) if keys is not None else None
        out = []
        for second in self._seconds(now):
            bucket = self._buckets.get(second)
            if not bucket:
                out.append(0)
            elif wanted is None:
                out.append(sum(bucket.values()))
            else:
                out.append(sum(n for k, n in bucket.items() if k in wanted))
        return out


@dataclass(frozen=True)
class PartitionProgress:
    """How far a consumer got in one partition it is assigned."""

    topic: str
    partition: int
    #: The partition's end offset (the offset the next record will get).
    end: int
    #: The last offset processed, -1 if none.
    done: int

    @property
    def waiting(self) -> int:
        """Records in the partition not processed yet (never negative)."""
        return max(self.end - (self.done + 1), 0)


@dataclass(frozen=True)
class TopicLag:
    topic: str
    partitions: int
    lag: int


def lag_by_topic(progress: Iterable[PartitionProgress]) -> list[TopicLag]:
    """Records waiting per topic, summed over the partitions given, by topic name."""
    lag: Counter[str] = Counter()
    partitions: Counter[str] = Counter()
    for p in progress:
        lag[p.topic] += p.waiting
        partitions[p.topic] += 1
    return [TopicLag(t, partitions[t], lag[t]) for t in sorted(partitions)]
