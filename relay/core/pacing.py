"""Pacing a group robot's messages to its platform's rate limits; pure.

A robot takes so many messages per rolling minute (企业微信 and 钉钉 20, 飞书 100) and, for
飞书, per second (5). Each robot channel has a :class:`Window` (kept in a changelogged table
by the worker that owns the partner's partition, so it survives restarts): when it sent,
which messages hold a reserved slot in the future, and until when the platform told it to
stop (a throttling reply). A message whose turn has not come is parked until its slot,
which is not an attempt: the receiver never saw it.

Slots are handed out in arrival order, so a burst goes out in the order it came, and each
counts against the window as if it were already sent: no rolling window ever holds more
than the limit, whatever comes back when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relay.core.chatbots import PlatformFacts

#: Seconds added to every boundary: the platform measures by its own clock, on arrival.
MARGIN = 0.5
#: Seconds between two reserved slots at least, so they come back in the order they came.
STEP = 0.001
#: A slot travels as ``due_at``, a datetime to the microsecond (rounded either way): a
#: message back that close to its slot has reached it.
RESOLUTION = 1e-6


@dataclass
class Window:
    #: When messages were sent (epoch seconds), newest last; only the last minute is kept.
    sent: list[float] = field(default_factory=list)
    #: Delivery id → the slot reserved for it (epoch seconds).
    reserved: dict[str, float] = field(default_factory=dict)
    #: The platform throttled the robot: nothing is sent before this time.
    blocked_until: float = 0.0

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> Window:
        if not stored:
            return cls()
        return cls(
            sent=[float(t) for t in stored.get("sent", [])],
            reserved={k: float(v) for k, v in stored.get("reserved", {}).items()},
            blocked_until=float(stored.get("blocked_until", 0.0)),
        )

    def dump(self) -> dict[str, Any]:
        return {"sent": self.sent, "reserved": self.reserved, "blocked_until": self.blocked_until}


@dataclass(frozen=True)
class Turn:
    """Whether a message may go now, or when it may."""

    now: bool
    at: float


def turn(window: Window, facts: PlatformFacts, delivery_id: str, now: float) -> Turn:
    """The message's turn: now, or a slot in the future (reserved in ``window``).

    A message that holds a reservation keeps it, unless the platform throttled the robot
    since (then it gets a new one after the block).
    """
    _forget_old(window, now)
    held = window.reserved.get(delivery_id)
    if held is not None and held >= window.blocked_until:
        if held <= now + RESOLUTION:
            del window.reserved[delivery_id]
            return Turn(True, now)
        return Turn(False, held)
    window.reserved.pop(delivery_id, None)
    start = max(now, window.blocked_until)
    if window.reserved:
        start = max(start, max(window.reserved.values()) + STEP)  # behind those waiting
    slot = _first_free(window, facts, start)
    if slot <= now:
        return Turn(True, now)
    window.reserved[delivery_id] = slot
    return Turn(False, slot)


def sent(window: Window, at: float) -> None:
    """A message went out at ``at``."""
    window.sent.append(at)


def blocked(window: Window, until: float) -> None:
    """The platform throttled the robot: nothing goes before ``until``."""
    window.blocked_until = max(window.blocked_until, until)


def released(window: Window, delivery_id: str) -> None:
    """The message no longer needs its slot (it ended another way)."""
    window.reserved.pop(delivery_id, None)


def _first_free(window: Window, facts: PlatformFacts, start: float) -> float:
    """The earliest time at or after ``start`` when one more message keeps every window
    within the limits, counting the sends and the reservations."""
    taken = sorted([*window.sent, *window.reserved.values()])
    t = start
    while True:
        later = _limit_at(taken, t, 60.0, facts.per_minute)
        if facts.per_second is not None:
            later = max(later, _limit_at(taken, t, 1.0, facts.per_second))
        if later <= t:
            return t
        t = later


def _limit_at(taken: list[float], t: float, span: float, limit: int) -> float:
    """``t`` if a message at ``t`` keeps every ``span``-second window containing it within
    ``limit``; otherwise a later time to try (when the oldest blocking one has aged out)."""
    # Windows containing t: (w - span, w] for w in [t, t + span). Each must hold < limit
    # others. Enough to check the window ending at each taken time after t, and at t.
    for end in [t, *(x for x in taken if t < x < t + span)]:
        inside = [x for x in taken if end - span - MARGIN < x <= end]
        if len(inside) >= limit:
            # The message must move past the first of those to free a place.
            return inside[0] + span + MARGIN
    return t


def _forget_old(window: Window, now: float) -> None:
    window.sent = [t for t in window.sent if t > now - 60.0 - MARGIN]
    # A slot long past whose message never came back (it ended another way): let it go.
    stale = [d for d, t in window.reserved.items() if t < now - 120.0]
    for d in stale:
        del window.reserved[d]
