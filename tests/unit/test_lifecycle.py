"""A policy's life after publication, as pure decisions: expiry reminders and catch-up."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from relay.core.lifecycle import (
    expired,
    plan_catch_up,
    plan_reminders,
    reminder_due,
    still_valid,
)
from relay.core.matching.reference import match_partner
from relay.core.models import DocumentSource, NoticeType, Partner
from relay.core.planning import DocumentState
from relay.runtime.calendar import PendingCatchUps
from tests.unit.factories import make_document, make_notification, partner

TODAY = date(2031, 3, 1)
NOW = datetime(2031, 3, 1, 1, 0)
EXPIRES = TODAY + timedelta(days=30)
SOURCE = DocumentSource(partition=2, offset=7)


def state(**changes: object) -> DocumentState:
    fields: dict[str, object] = {
        "document_id": "QE5320000-2023-01",
        "version": 1,
        "recipients": {"p-1": 1, "p-2": 1},
        "expires_on": EXPIRES,
        "normative": True,
        "source": SOURCE,
    }
    fields.update(changes)
    return DocumentState.model_validate(fields)


def book(*partners: Partner) -> dict[str, Partner]:
    return {p.id: p for p in partners}


# ------------------------------------------------------------------ reminders


def test_a_reminder_is_due_from_n_days_before_expiry_until_the_day_itself() -> None:
    s = state()
    assert not reminder_due(s, EXPIRES - timedelta(days=31), 30)
    assert reminder_due(s, EXPIRES - timedelta(days=30), 30)
    assert reminder_due(s, EXPIRES, 30)
    assert not reminder_due(s, EXPIRES + timedelta(days=1), 30)  # expired: too late


def test_only_normative_valid_documents_not_yet_reminded_are_reminded() -> None:
    assert not reminder_due(state(normative=False), TODAY, 30)
    assert not reminder_due(state(expires_on=None), TODAY, 30)
    assert not reminder_due(state(repealed=True), TODAY, 30)
    assert not reminder_due(state(source=None), TODAY, 30)
    assert not reminder_due(state(reminded=EXPIRES.isoformat()), TODAY, 30)
    # A revision that moves the expiry date is reminded of again.
    assert reminder_due(state(reminded=(EXPIRES - timedelta(days=5)).isoformat()), TODAY, 30)


def test_every_recipient_gets_one_reminder_with_ids_that_never_change() -> None:
    partners = book(partner("p-1"), partner("p-2"), partner("p-3"))
    doc = make_document(normative=True, expires_on=EXPIRES)
    first = plan_reminders(state(), doc, lookup=partners.get, judge=match_partner, now=NOW)
    again = plan_reminders(
        state(), doc, lookup=partners.get, judge=match_partner, now=NOW + timedelta(hours=3)
    )
    assert [n.partner_id for n in first.notifications] == ["p-1", "p-2"]  # not p-3
    assert {n.type for n in first.notifications} == {NoticeType.expiring}
    ids = [d.delivery_id for n in first.notifications for d in n.deliveries]
    assert len(ids) == 4 and len(set(ids)) == 4  # every channel of each recipient
    assert ids == [d.delivery_id for n in again.notifications for d in n.deliveries]
    assert first.state is not None and first.state.reminded == EXPIRES.isoformat()
    assert not reminder_due(first.state, TODAY, 30)


def test_paused_or_removed_recipients_are_not_reminded() -> None:
    partners = book(partner("p-1", paused=True))
    doc = make_document(normative=True, expires_on=EXPIRES)
    plan = plan_reminders(state(), doc, lookup=partners.get, judge=match_partner, now=NOW)
    assert plan.notifications == []


def test_a_moved_expiry_date_gets_reminders_of_its_own() -> None:
    partners = book(partner("p-1"))
    one = plan_reminders(
        state(recipients={"p-1": 1}),
        make_document(normative=True, expires_on=EXPIRES),
        lookup=partners.get,
        judge=match_partner,
        now=NOW,
    )
    later = plan_reminders(
        state(recipients={"p-1": 1}),
        make_document(normative=True, expires_on=EXPIRES + timedelta(days=365)),
        lookup=partners.get,
        judge=match_partner,
        now=NOW,
    )
    assert one.notifications[0].notification_id != later.notifications[0].notification_id


# ------------------------------------------------------------------ catch-up


def test_a_catch_up_partner_gets_a_valid_matching_document_it_never_received_once() -> None:
    joined = partner("p-new", catch_up=True)
    doc = make_document(normative=True, expires_on=EXPIRES)
    plan = plan_catch_up(state(), doc, [joined], judge=match_partner, today=TODAY, now=NOW)
    [n] = plan.notifications
    assert n.catch_up and n.type is NoticeType.relayed and n.partner_id == "p-new"
    assert plan.state is not None and plan.state.recipients["p-new"] == 1
    # Planned again (a restart, the partner heard again): nothing more.
    again = plan_catch_up(plan.state, doc, [joined], judge=match_partner, today=TODAY, now=NOW)
    assert again.notifications == [] and again.state is None


def test_catch_up_skips_partners_without_it_that_received_it_or_do_not_match() -> None:
    doc = make_document(normative=True, expires_on=EXPIRES, scope={"audiences": ["park"]})
    plan = plan_catch_up(
        state(),
        doc,
        [
            partner("p-off", catch_up=False, kind="park"),
            partner("p-1", catch_up=True, kind="park"),  # a recipient already
            partner("p-assoc", catch_up=True),  # an association: the scope says no
            partner("p-paused", catch_up=True, kind="park", paused=True),
        ],
        judge=match_partner,
        today=TODAY,
        now=NOW,
    )
    assert plan.notifications == []


def test_an_expired_or_repealed_document_is_never_caught_up() -> None:
    joined = partner("p-new", catch_up=True)
    doc = make_document(normative=True, expires_on=TODAY - timedelta(days=1))
    gone = state(expires_on=TODAY - timedelta(days=1))
    assert not still_valid(gone, TODAY)
    assert (
        plan_catch_up(gone, doc, [joined], judge=match_partner, today=TODAY, now=NOW).notifications
        == []
    )
    repealed = state(repealed=True)
    doc = make_document(normative=True, expires_on=EXPIRES)
    assert (
        plan_catch_up(
            repealed, doc, [joined], judge=match_partner, today=TODAY, now=NOW
        ).notifications
        == []
    )


def test_pending_catch_ups_wait_in_every_partition_until_taken_there() -> None:
    pending = PendingCatchUps(3)
    pending.heard("p-off", partner("p-off"))
    pending.heard("p-new", partner("p-new", catch_up=True))
    pending.heard("gone", None)
    assert pending.waiting() == {0, 1, 2}
    assert pending.take(1) == {"p-new"}
    assert pending.waiting() == {0, 2}  # the others are looked at by their owners
    pending.put_back(1, {"p-new"})
    assert pending.waiting() == {0, 1, 2}


# ------------------------------------------------------------------ expired documents


def test_an_expired_documents_notices_are_not_sent_but_a_repeal_is() -> None:
    n, _, _ = make_notification(expires_on=TODAY - timedelta(days=1))
    assert expired(n, TODAY)
    assert not expired(n, TODAY - timedelta(days=1))  # valid on its last day
    reminder, _, _ = make_notification(NoticeType.expiring, expires_on=TODAY - timedelta(days=1))
    assert expired(reminder, TODAY)
    repeal, _, _ = make_notification(NoticeType.repealed, expires_on=TODAY - timedelta(days=1))
    assert not expired(repeal, TODAY)
    open_ended, _, _ = make_notification(expires_on=None)
    assert not expired(open_ended, TODAY)
