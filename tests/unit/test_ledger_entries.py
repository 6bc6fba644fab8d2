"""Ledger entries are kept as JSON-ready dicts; they must stay what the models say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from relay.core.models import DeliveryIntent, DeliveryStatus, LedgerEntry
from relay.core.outcome import Outcome, OutcomeStatus
from relay.runtime.deliver import EARLY, MADE, NEW, new_ledger_entry, record_attempt, verdict
from tests.unit.factories import make_notification

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def intent() -> DeliveryIntent:
    notification, delivery, _ = make_notification()
    return DeliveryIntent(
        delivery_id=delivery.delivery_id,
        channel_id=delivery.channel_id,
        channel_type=delivery.channel_type,
        notification=notification,
    )


def test_a_new_entry_is_a_pending_ledger_entry_of_the_intent() -> None:
    i = intent()
    entry = new_ledger_entry(i)
    model = LedgerEntry.model_validate(entry)
    assert model == LedgerEntry(
        delivery_id=i.delivery_id,
        partner_id=i.partner_id,
        document_id=i.document_id,
        channel_id=i.channel_id,
        channel_type=i.channel_type,
    )
    assert entry == model.model_dump(mode="json")


def test_attempts_accumulate_and_the_entry_stays_a_valid_ledger_entry() -> None:
    entry = new_ledger_entry(intent())
    failed = Outcome(OutcomeStatus.retry, "HTTP 503: busy", 503, None, 12.3456)
    record_attempt(entry, 1, T0, failed, DeliveryStatus.retrying, T0 + timedelta(seconds=5))
    smtp = Outcome(OutcomeStatus.delivered, "250 OK", None, None, 3.0, 250)
    record_attempt(entry, 2, T0 + timedelta(seconds=6), smtp, DeliveryStatus.delivered, None)

    model = LedgerEntry.model_validate(json.loads(json.dumps(entry)))  # as the changelog has it
    assert model.status is DeliveryStatus.delivered
    assert model.next_attempt_at is None
    first, second = model.attempts
    assert (first.attempt, first.at, first.status) == (1, T0, "retry")
    assert (first.http_status, first.latency_ms, first.detail) == (503, 12.35, "HTTP 503: busy")
    assert (second.attempt, second.status, second.http_status) == (2, "delivered", 250)


def test_a_retry_records_when_it_is_due() -> None:
    entry = new_ledger_entry(intent())
    due = T0 + timedelta(minutes=5)
    timeout = Outcome(OutcomeStatus.retry, "timeout")
    record_attempt(entry, 1, T0, timeout, DeliveryStatus.retrying, due)
    assert LedgerEntry.model_validate(entry).next_attempt_at == due


def test_an_attempt_keeps_its_replay_round_and_a_dead_end_its_reason() -> None:
    entry = new_ledger_entry(intent())
    gone = Outcome(OutcomeStatus.failed, "HTTP 404", 404)
    record_attempt(entry, 1, T0, gone, DeliveryStatus.failed, None, reason="permanent_failure")
    record_attempt(entry, 1, T0, gone, DeliveryStatus.failed, None, replay=1, reason="x")
    model = LedgerEntry.model_validate(json.loads(json.dumps(entry)))
    assert [(a.replay, a.attempt) for a in model.attempts] == [(0, 1), (1, 1)]
    assert model.reason == "x"


def entry_after(*attempts: tuple[int, int], due: datetime | None = None) -> dict[str, object]:
    """A ledger entry whose attempts were (replay round, attempt), the last one due again."""
    entry = new_ledger_entry(intent())
    busy = Outcome(OutcomeStatus.retry, "HTTP 503", 503)
    for replay, n in attempts:
        record_attempt(entry, n, T0, busy, DeliveryStatus.retrying, due, replay=replay)
    return entry


def test_an_attempt_the_ledger_holds_or_has_passed_is_made_already() -> None:
    entry = entry_after((0, 1), (0, 2))
    assert verdict(entry, 0, 2, T0) == MADE  # the same attempt, read again after a crash
    assert verdict(entry, 0, 1, T0) == MADE  # an older one
    assert verdict(entry, 0, 3, T0) == NEW
    replayed = entry_after((0, 1), (0, 5), (1, 1))
    assert verdict(replayed, 1, 1, T0) == MADE  # the same dead letter replayed twice
    assert verdict(replayed, 0, 5, T0) == MADE
    assert verdict(replayed, 1, 2, T0) == NEW
    assert verdict(replayed, 2, 1, T0) == NEW  # a replay of the replay's dead letter


def test_the_next_attempt_before_its_time_is_early_and_any_other_is_not() -> None:
    due = T0 + timedelta(seconds=2)
    entry = entry_after((0, 1), due=due)
    assert verdict(entry, 0, 2, T0 + timedelta(seconds=1.9)) == EARLY
    assert verdict(entry, 0, 2, due) == NEW
    assert verdict(entry, 0, 3, T0) == NEW  # not the next one: the ledger missed some
    assert verdict(entry, 1, 1, T0) == NEW  # a replay is the operator's call
    assert verdict(new_ledger_entry(intent()), 0, 1, T0) == NEW
