"""The watchdog flags a partition whose records wait unread, not one with nothing new."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP as FaustTP

from relay.core import topics
from relay.runtime import watchdog
from relay.runtime.watchdog import Watchdog

TP = FaustTP(topics.DELIVER_WEBHOOK, 0)


def _watchdog(monkeypatch: pytest.MonkeyPatch, end: int, started_from: int | None) -> Watchdog:
    async def ends(servers: Any, tps: Any) -> dict[Any, int]:
        return {TP: end}

    monkeypatch.setattr(watchdog, "true_end_offsets", ends)
    committed: defaultdict[Any, int | None] = defaultdict(lambda: None)
    committed[TP] = started_from
    app = SimpleNamespace(
        rebalancing=False,
        consumer=SimpleNamespace(assignment=lambda: {TP}, _committed_offset=committed),
        # A restarted worker that has read and committed nothing itself yet.
        monitor=SimpleNamespace(tp_read_offsets={}, tp_committed_offsets={}),
    )
    settings = SimpleNamespace(stall_timeout=15.0, bootstrap_servers="127.0.0.1:9092")
    return Watchdog(SimpleNamespace(app=app, settings=settings))  # type: ignore[arg-type]


async def _check_over(dog: Watchdog, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    clock = [1000.0]
    monkeypatch.setattr("relay.runtime.watchdog.time", SimpleNamespace(monotonic=lambda: clock[0]))
    # On a stall it stops its own process: not here.
    monkeypatch.setattr("relay.runtime.watchdog.os", SimpleNamespace(getpid=lambda: 0, kill=print))
    await dog._check()
    clock[0] += seconds
    await dog._check()


async def test_nothing_new_since_the_committed_offset_is_not_a_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dog = _watchdog(monkeypatch, end=250, started_from=250)
    await _check_over(dog, monkeypatch, 60)
    assert dog.stalled is None


async def test_records_waiting_past_the_committed_offset_are_a_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dog = _watchdog(monkeypatch, end=250, started_from=40)
    await _check_over(dog, monkeypatch, 60)
    assert dog.stalled is not None and "210 records waiting" in dog.stalled
