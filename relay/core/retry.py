"""Every retry decision, in one place; pure.

What a receiver's answer means (:func:`http_outcome`, :func:`smtp_status`,
:func:`parse_retry_after`), when to try again or give up (:class:`RetryPolicy`,
:func:`decide`), when a channel has failed for too long (:func:`health_after`), and how
fast one channel may be sent to (:class:`RateLimiter`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

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


# ---------------------------------------------------------------- what an answer means

#: Characters of a receiver's error reply quoted in the attempt's detail.
SNIPPET_CHARS = 200


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, at most ``MAX_RETRY_AFTER``; None if
    there is none or it is neither form of RFC 9110 §10.2.3.

    delay-seconds are ASCII digits only (no sign, fraction, exponent, ``inf``); an HTTP-date
    in the past means now (0), one further than a day away means a day.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # More than 6 digits is over a day anyway (and int() refuses over 4,300 digits).
        return MAX_RETRY_AFTER if len(value) > 6 else min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def _snippet(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    if not text:
        return ""
    return ": " + (text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…")


def http_outcome(
    status: int, headers: Mapping[str, str], reply: bytes, latency_ms: float
) -> Outcome:
    """What an HTTP reply means for a delivery, per DESIGN §6 and the Standard Webhooks spec:
    2xx delivered, 410 disabled, 429 and 5xx retried (after ``Retry-After``), the rest failed.

    ``headers`` is looked up by lower-case name (the client's headers ignore case anyway).
    """
    if 200 <= status < 300:
        return Outcome(OutcomeStatus.delivered, f"HTTP {status}", status, None, latency_ms)
    if status == 410:
        detail = "HTTP 410 Gone: the receiver asked for no more deliveries to this URL"
        return Outcome(OutcomeStatus.disabled, detail, status, None, latency_ms)
    if status == 429 or status >= 500:
        wait = parse_retry_after(headers.get("retry-after"))
        detail = f"HTTP {status}{_snippet(reply)}"
        return Outcome(OutcomeStatus.retry, detail, status, wait, latency_ms)
    if 300 <= status < 400:
        # Redirects are not followed: a receiver could bounce us to an internal address.
        where = headers.get("location", "")
        detail = f"HTTP {status} redirect not followed" + (f" (to {where[:200]})" if where else "")
        return Outcome(OutcomeStatus.failed, detail, status, None, latency_ms)
    detail = f"HTTP {status}{_snippet(reply)}"
    return Outcome(OutcomeStatus.failed, detail, status, None, latency_ms)


def smtp_status(code: int) -> OutcomeStatus:
    """An SMTP reply refusing a message: 5xx is the server's final word on it, 4xx and
    anything odd may pass later."""
    return OutcomeStatus.failed if 500 <= code < 600 else OutcomeStatus.retry
