"""What happens after an attempt: retry when, give up when, and channel health; pure."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from relay.core.models import DeliveryStatus
from relay.core.outcome import MAX_RETRY_AFTER, Outcome, OutcomeStatus

#: ±20 % on every delay, so a thousand deliveries that failed together do not return together.
JITTER = 0.2


@dataclass(frozen=True)
class RetryPolicy:
    """``schedule[i]`` is the wait after attempt ``i + 1``; past its end a delivery is dead."""

    schedule: tuple[float, ...]
    floor: float = 60.0
    jitter: float = JITTER

    def delay(self, attempt: int, outcome: Outcome, rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None when the schedule is exhausted."""
        if attempt > len(self.schedule):
            return None
        base = self.schedule[attempt - 1]
        wait = base * rng.uniform(1 - self.jitter, 1 + self.jitter)
        after = outcome.retry_after
        if after is not None and not math.isnan(after):
            # Bounded whoever built the outcome: a datetime cannot hold now + 1e12 s.
            wait = max(wait, min(after, MAX_RETRY_AFTER))
        if slow_down(outcome):
            wait = max(wait, self.floor)
        return wait


def slow_down(outcome: Outcome) -> bool:
    """The receiver is overloaded (429) or too slow (a timeout, HTTP or SMTP): back off at
    least the floor."""
    return outcome.http_status == 429 or outcome.timed_out


@dataclass(frozen=True)
class Decision:
    """The delivery's new state after an attempt."""

    status: DeliveryStatus
    #: When to try again (status ``retrying``).
    retry_at: datetime | None = None
    #: Goes to the dead-letter topic (failed, disabled or exhausted).
    dead_letter: bool = False
    reason: str | None = None


def decide(
    attempt: int, outcome: Outcome, policy: RetryPolicy, now: datetime, rng: random.Random
) -> Decision:
    if outcome.status is OutcomeStatus.delivered:
        return Decision(DeliveryStatus.delivered)
    if outcome.status is OutcomeStatus.disabled:
        return Decision(DeliveryStatus.disabled, dead_letter=True, reason="channel_disabled")
    if outcome.status is OutcomeStatus.failed:
        return Decision(DeliveryStatus.failed, dead_letter=True, reason="permanent_failure")
    wait = policy.delay(attempt, outcome, rng)
    if wait is None:
        return Decision(DeliveryStatus.dead, dead_letter=True, reason="retries_exhausted")
    return Decision(DeliveryStatus.retrying, retry_at=now + timedelta(seconds=wait))


@dataclass(frozen=True)
class Health:
    """A channel's failure streak: when it began, if it is failing now."""

    failing_since: datetime | None = None
    failures: int = 0


def health_after(
    health: Health, outcome: Outcome, now: datetime, window: float
) -> tuple[Health, bool]:
    """The channel's new health, and whether it has now failed continuously for ``window``."""
    if outcome.status is OutcomeStatus.delivered:
        return Health(), False
    since = health.failing_since or now
    new = Health(failing_since=since, failures=health.failures + 1)
    return new, (now - since).total_seconds() >= window


class RateLimiter:
    """At most ``rate`` events per second per key: ``wait(key, now)`` says how long to hold."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next: dict[str, float] = {}

    def reserve(self, key: str, now: float) -> float:
        """Book the next slot for ``key``; returns the seconds to wait before using it."""
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self.interval
        if len(self._next) > 100_000:  # forget keys whose slots are long past
            self._next = {k: v for k, v in self._next.items() if v > now}
        return slot - now
