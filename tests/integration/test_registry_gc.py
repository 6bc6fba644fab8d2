"""The partner registry keeps its profiles outside the cyclic garbage collector (DESIGN §8).

A full collection walks every tracked object; with 100,000 profiles that stalled matching
for about a second. The registry freezes them (``gc.freeze``) when it has caught up and
again after a bulk load while running. Against the session's real broker.
"""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from relay.adapters import kafka
from relay.core import topics
from relay.runtime.registry import BULK_LOAD, Registry
from tests.integration.conftest import RelayUnderTest
from tests.integration.test_registry import changing_partner

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def tracked(obj: object) -> bool:
    """Whether the cyclic collector's generations hold ``obj`` (frozen objects are not)."""
    return any(o is obj for o in gc.get_objects())


async def test_a_bulk_load_of_partners_leaves_the_collectors_sight(relay: RelayUnderTest) -> None:
    registry = Registry(relay.settings)
    await registry.start()
    ids = [f"gc-bulk-{i:05d}" for i in range(BULK_LOAD + 200)]
    try:
        await registry.wait_ready(60)
        frozen_at_start = gc.get_freeze_count()
        assert frozen_at_start > 0  # caught up: what it loaded is frozen

        await kafka.produce(
            relay.settings,
            [
                (topics.PARTNERS, pid, changing_partner(pid, 1).model_dump_json().encode())
                for pid in ids
            ],
        )
        deadline = time.monotonic() + 60
        while not all(pid in registry.book.partners for pid in ids):
            assert time.monotonic() < deadline, "the registry did not read the bulk load"
            await asyncio.sleep(0.1)
        # Applied in batches; frozen once the topic is quiet again.
        while registry.unfrozen >= BULK_LOAD:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert gc.get_freeze_count() >= frozen_at_start + len(ids)
        assert not tracked(registry.book.partners[ids[0]])
        assert not tracked(registry.book.partners[ids[-1]])

        # One change later is not a bulk load: it stays with the collector until the next.
        one = changing_partner(ids[0], 2)
        await kafka.produce(
            relay.settings, [(topics.PARTNERS, one.id, one.model_dump_json().encode())]
        )
        while registry.book.partners[ids[0]].name != one.name:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert 0 < registry.unfrozen < BULK_LOAD
        assert tracked(registry.book.partners[ids[0]])
    finally:
        await kafka.produce(relay.settings, [(topics.PARTNERS, pid, None) for pid in ids])
        await registry.stop()
        gc.unfreeze()
