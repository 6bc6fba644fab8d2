"""Pinning table writes to the partition of the event being handled."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event
from faust.types import EventT


@contextmanager
def on_behalf_of(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` the current event while handling it.

    Table writes go to the current event's partition. A batch from ``take_events`` mixes
    partitions, and the stream's own notion of the current event is the last one taken,
    so each item of a batch sets its own (per asyncio task, as context variables are).
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
