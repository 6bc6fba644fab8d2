"""The group-wide check: every partition held by exactly one live worker, and moving."""

from __future__ import annotations

from relay.core.coverage import Beat, Coverage, actor
from relay.core.stats import PartitionProgress

T = "relay.deliveries.webhook"
GRACE, STALL, LIVE = 20.0, 25.0, 6.0


def coverage() -> Coverage:
    return Coverage(partitions={T: 4}, live_for=LIVE, grace=GRACE, stall=STALL)


def beat(
    worker: str,
    parts: list[int],
    at: float,
    *,
    rebalancing: bool = False,
    read: dict[int, int] | None = None,
) -> Beat:
    return Beat(
        worker=worker,
        at=at,
        seen=at,
        rebalancing=rebalancing,
        assignment={T: parts} if parts else {},
        read={T: read or {}},
    )


def progress(partition: int, end: int, done: int) -> PartitionProgress:
    return PartitionProgress(topic=T, partition=partition, end=end, done=done)


def test_every_partition_held_once_is_fine() -> None:
    c = coverage()
    for now in (0.0, 30.0, 60.0):
        assert c.check([beat("a", [0, 1], now), beat("b", [2, 3], now)], None, now) == []


def test_a_partition_held_by_nobody_is_reported_once_it_outlasts_the_grace() -> None:
    c = coverage()
    beats = lambda now: [beat("a", [0, 2], now), beat("b", [0, 1], now)]  # noqa: E731
    assert c.check(beats(0.0), None, 0.0) == []
    assert c.check(beats(GRACE - 1), None, GRACE - 1) == []
    found = {str(f) for f in c.check(beats(GRACE), None, GRACE)}
    assert found == {f"{T}[0] held by a, b for 20s", f"{T}[3] held by no worker for 20s"}


def test_a_rebalance_in_progress_restarts_the_clock() -> None:
    c = coverage()
    c.check([beat("a", [0, 1, 2], 0.0)], None, 0.0)
    # Partition 3 unowned, but a worker is rebalancing at 15 s: that settles ownership.
    c.check([beat("a", [], 15.0, rebalancing=True)], None, 15.0)
    assert c.check([beat("a", [0, 1, 2], 25.0)], None, 25.0) == []
    assert len(c.check([beat("a", [0, 1, 2], 45.0)], None, 45.0)) == 1


def test_a_worker_whose_beats_stopped_holds_nothing() -> None:
    c = coverage()
    dead = beat("b", [2, 3], 0.0)
    c.check([beat("a", [0, 1], 0.0), dead], None, 0.0)
    # b's last beat is older than LIVE from 10 s on: its partitions are held by nobody.
    assert c.check([beat("a", [0, 1], 10.0), dead], None, 10.0) == []
    found = c.check([beat("a", [0, 1], 30.0), dead], None, 30.0)
    assert [(f.partition, "no worker" in f.problem) for f in found] == [(2, True), (3, True)]


def test_records_nobody_reads_or_commits_are_reported_after_the_stall_time() -> None:
    c = coverage()
    beats = lambda now, read: [beat("a", [0, 1, 2, 3], now, read=read)]  # noqa: E731
    assert c.check(beats(0.0, {1: 9}), [progress(1, end=20, done=9)], 0.0) == []
    # The holder reads on (a long batch): not stuck, though nothing was committed.
    assert c.check(beats(10.0, {1: 15}), [progress(1, end=20, done=9)], 10.0) == []
    assert c.check(beats(34.0, {1: 15}), [progress(1, end=20, done=9)], 34.0) == []
    found = c.check(beats(35.0, {1: 15}), [progress(1, end=20, done=9)], 35.0)
    assert [str(f) for f in found] == [
        f"{T}[1] 10 records waiting, nothing committed or read for 25s"
    ]


def test_a_dead_workers_partitions_may_stand_still_for_the_grace_period() -> None:
    c = Coverage(partitions={T: 1}, live_for=LIVE, grace=GRACE, stall=5.0)
    still = [progress(0, end=20, done=9)]
    c.check([beat("a", [0], 0.0)], still, 0.0)
    assert c.check([beat("a", [0], GRACE - 1)], still, GRACE - 1) == []
    assert len(c.check([beat("a", [0], GRACE)], still, GRACE)) == 1


def test_a_partition_with_nothing_waiting_is_never_stuck() -> None:
    c = coverage()
    beats = [beat("a", [0, 1, 2, 3], 0.0)]
    for now in (0.0, 100.0):
        assert c.check(beats, [progress(0, end=7, done=6)], now) == []


def test_after_acting_the_check_waits_a_grace_period() -> None:
    c = coverage()
    orphaned = lambda now: [beat("a", [0, 1, 2], now)]  # noqa: E731
    c.check(orphaned(0.0), None, 0.0)
    assert c.check(orphaned(GRACE), None, GRACE)
    c.acted(GRACE)
    assert c.check(orphaned(2 * GRACE - 1), None, 2 * GRACE - 1) == []
    # Judged afresh from then on: another full grace before it is reported again.
    assert c.check(orphaned(2 * GRACE), None, 2 * GRACE) == []
    assert c.check(orphaned(3 * GRACE), None, 3 * GRACE)


def test_beats_read_back_from_history_are_not_signs_of_life() -> None:
    c = coverage()
    old = Beat(worker="gone", at=0.0, seen=1000.0, rebalancing=False, assignment={T: [0]})
    assert c.live([old], 1000.0) == []  # sent long ago, though just read


def test_the_lowest_live_worker_acts() -> None:
    assert actor([beat("w-b", [], 0.0), beat("w-a", [], 0.0)]) == "w-a"
    assert actor([]) is None
