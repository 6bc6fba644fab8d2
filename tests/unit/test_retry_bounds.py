"""The retry decision is bounded whatever an outcome says, and a timeout is a property, not text."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from relay.core.models import DeliveryStatus
from relay.core.outcome import MAX_RETRY_AFTER, Outcome, OutcomeStatus
from relay.core.retry import RetryPolicy, decide

NOW = datetime(2024, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy((5.0, 300.0), floor=60.0)


@pytest.mark.parametrize(
    ("retry_after", "at_least", "at_most"),
    [
        (float("inf"), MAX_RETRY_AFTER, MAX_RETRY_AFTER),
        (1e12, MAX_RETRY_AFTER, MAX_RETRY_AFTER),
        (float("nan"), 4.0, 6.0),  # no wish at all: the schedule's 5 s ± 20 %
        (-30.0, 4.0, 6.0),
        (120.0, 120.0, 120.0),
    ],
)
def test_a_retry_after_is_honoured_up_to_a_day_and_never_overflows(
    retry_after: float, at_least: float, at_most: float
) -> None:
    outcome = Outcome(OutcomeStatus.retry, "HTTP 503", 503, retry_after)

    decision = decide(1, outcome, POLICY, NOW, random.Random(3))

    assert decision.status is DeliveryStatus.retrying and decision.retry_at is not None
    wait = (decision.retry_at - NOW).total_seconds()
    assert at_least <= wait <= at_most


def test_the_floor_follows_the_timed_out_flag_not_the_wording_of_the_detail() -> None:
    def wait(outcome: Outcome) -> timedelta:
        retry_at = decide(1, outcome, POLICY, NOW, random.Random(3)).retry_at
        assert retry_at is not None
        return retry_at - NOW

    smtp = Outcome(OutcomeStatus.retry, "SMTP timeout: no greeting", timed_out=True)
    worded = Outcome(OutcomeStatus.retry, "timeout-ish words, but a refused connection")
    assert wait(smtp) >= timedelta(seconds=60)
    assert wait(worded) <= timedelta(seconds=6)
