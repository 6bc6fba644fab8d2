"""Pinning table writes to the partition of the event being handled."""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event
from faust.types import EventT


class on_behalf_of:  # noqa: N801  (used like a function: ``with on_behalf_of(event):``)
    """Make ``event`` the current event while handling it.

    Table writes go to the current event's partition. A batch from ``take_events`` mixes
    partitions, and the stream's own notion of the current event is the last one taken,
    so each item of a batch sets its own (per asyncio task, as context variables are).
    A plain class: it runs once per delivery, and a generator-based manager costs more.
    """

    __slots__ = ("_event", "_token")

    def __init__(self, event: EventT[Any]) -> None:
        self._event = event

    def __enter__(self) -> None:
        self._token = _current_event.set(weakref.ref(self._event))

    def __exit__(self, *exc: object) -> None:
        _current_event.reset(self._token)
