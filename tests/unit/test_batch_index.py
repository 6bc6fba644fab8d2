"""The index of a batched table's uncovered changelog batch records (relay/adapters/batches.py)."""

from __future__ import annotations

from relay.adapters.batches import BatchIndex


def test_batches_are_kept_per_partition_oldest_first_and_dropped_when_covered() -> None:
    index = BatchIndex()
    index.add(0, "~batch~a", {"d1": {}, "d2": {}})
    index.add(1, "~batch~b", ["d3"])
    index.add(0, "~batch~c", ["d2", "d4"])
    assert index.of(0) == [("~batch~a", ("d1", "d2")), ("~batch~c", ("d2", "d4"))]
    assert index.of(1) == [("~batch~b", ("d3",))]

    index.drop(0, "~batch~a")
    index.drop(3, "~batch~never")  # a tombstone for a batch this worker never saw
    assert index.of(0) == [("~batch~c", ("d2", "d4"))]
    assert index.of(3) == []


def test_an_index_dumped_and_loaded_again_is_the_same() -> None:
    index = BatchIndex()
    index.add(2, "~batch~x", ["k1"])
    index.add(2, "~batch~y", ["k2", "k3"])
    again = BatchIndex()
    again.load(2, index.dump(2))
    assert again.of(2) == index.of(2)
