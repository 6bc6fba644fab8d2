"""Which batch records a table's changelog still holds, partition by partition.

A batched table (relay/runtime/ledger.py) writes many entries in one changelog record
keyed ``~batch~<uuid>``. Such a key is never written twice, so log compaction (latest
record per key) would keep every one of them: the table's owner later *covers* the oldest,
writing their entries under their own keys and then a tombstone for each batch key. This
index is what it covers from: for each partition, the batch records not yet covered
(oldest first) and the keys of their entries, learnt from the records the worker wrote
and from those it read back from the changelog.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class BatchIndex:
    """Per partition, the uncovered batch records (oldest first) and their entries' keys."""

    def __init__(self) -> None:
        self._by_partition: dict[int, dict[str, tuple[str, ...]]] = {}

    def add(self, partition: int, batch_key: str, keys: Iterable[str]) -> None:
        """A batch record of ``partition`` holding ``keys`` (written or read)."""
        batches = self._by_partition.setdefault(partition, {})
        batches.pop(batch_key, None)
        batches[batch_key] = tuple(keys)

    def drop(self, partition: int, batch_key: str) -> None:
        """The batch record was covered (its tombstone written or read)."""
        self._by_partition.get(partition, {}).pop(batch_key, None)

    def of(self, partition: int) -> list[tuple[str, tuple[str, ...]]]:
        """The partition's uncovered batch records, oldest first."""
        return list(self._by_partition.get(partition, {}).items())

    def load(self, partition: int, batches: Mapping[str, Iterable[str]]) -> None:
        """Replace what is known of ``partition`` (read back from a store's database)."""
        self._by_partition[partition] = {k: tuple(v) for k, v in batches.items()}

    def dump(self, partition: int) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._by_partition.get(partition, {}).items()}
