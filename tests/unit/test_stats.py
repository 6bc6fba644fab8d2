"""The dashboard's arithmetic: rolling rates, consumer lag by topic, funnels from the fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.core.models import AuditRecord, DeliveryStatus
from relay.core.stats import PartitionProgress, RateWindow, TopicLag, lag_by_topic
from relay.core.trace import FAILURES_KEPT, TraceBook
from relay.web.dashboard import document_summary, throughput
from tests.unit.test_trace import T0, ack, attempt, planned

NOW = 1_800_000_000.0


# ------------------------------------------------------------------ rolling window


def test_the_window_counts_the_last_span_seconds_by_key() -> None:
    w = RateWindow(60)
    w.add(NOW - 61, "webhook.delivered")  # a minute and more ago: out
    w.add(NOW - 59, "webhook.delivered")
    w.add(NOW - 1, "webhook.delivered", 3)
    w.add(NOW, "email.delivered")
    w.add(NOW, "email.retrying")
    assert w.counts(NOW) == {"webhook.delivered": 4, "email.delivered": 1, "email.retrying": 1}
    assert w.counts(NOW + 60) == {}


def test_records_arriving_late_and_out_of_order_land_in_their_own_second() -> None:
    w = RateWindow(10)
    w.add(NOW, "a")
    w.add(NOW - 5, "a")  # folded later than a newer one
    w.add(NOW - 3, "a", 2)
    assert w.series(NOW) == [0, 0, 0, 0, 1, 0, 2, 0, 0, 1]
    assert w.series(NOW, keys=["b"]) == [0] * 10


def test_history_older_than_the_window_is_dropped_so_memory_stays_bounded() -> None:
    w = RateWindow(60)
    for i in range(10_000):  # a day of history folded at start-up, one record per 8 s
        w.add(NOW - 86_400 + i * 8.64, "webhook.delivered")
    w.add(NOW - 86_400, "webhook.delivered")  # far too old now: ignored
    assert len(w._buckets) <= 61
    assert sum(w.counts(NOW).values()) == 6  # those of the last minute: 8.64 s to 51.84 s ago


def test_a_window_needs_a_positive_span() -> None:
    with pytest.raises(ValueError, match="span"):
        RateWindow(0)


@given(st.lists(st.tuples(st.integers(0, 300), st.sampled_from("ab")), max_size=200))
def test_the_window_agrees_with_counting_by_hand(events: list[tuple[int, str]]) -> None:
    w = RateWindow(60)
    for offset, key in events:
        w.add(NOW - 300 + offset, key)
    # Read at (or after) the newest record: what counting the last minute by hand says.
    now = NOW
    expected: dict[str, int] = {}
    for offset, key in events:
        if now - 60 < NOW - 300 + offset <= now:
            expected[key] = expected.get(key, 0) + 1
    assert dict(w.counts(now)) == expected
    assert sum(w.series(now)) == sum(expected.values())


# ------------------------------------------------------------------ lag


def test_lag_is_summed_per_topic_and_never_negative() -> None:
    progress = [
        PartitionProgress("relay.retry", 0, end=10, done=9),  # read everything
        PartitionProgress("relay.deliveries.webhook", 0, end=100, done=39),  # 60 waiting
        PartitionProgress("relay.deliveries.webhook", 1, end=5, done=-1),  # nothing read: 5
        PartitionProgress("relay.deliveries.webhook", 2, end=0, done=-1),  # empty
        PartitionProgress("documents.published", 3, end=7, done=9),  # committed past the end
    ]
    assert lag_by_topic(progress) == [
        TopicLag("documents.published", 1, 0),
        TopicLag("relay.deliveries.webhook", 3, 65),
        TopicLag("relay.retry", 1, 0),
    ]
    assert lag_by_topic([]) == []


# ------------------------------------------------------------------ the fold's side of it


def outcome(book: TraceBook, did: str, status: DeliveryStatus, at: datetime, detail: str) -> None:
    book.add(
        AuditRecord(
            kind=f"delivery.{status}",
            at=at,
            delivery_id=did,
            status=status,
            attempt=1,
            channel_type="webhook" if "webhook" in did else "email",
            reason="why",
            detail=detail,
        )
    )


def test_status_counts_follow_each_delivery_through_its_life() -> None:
    book = TraceBook()
    email, webhook = planned(book, "D1", "p-1", 1)
    assert book.status_counts[DeliveryStatus.pending] == 2
    attempt(book, email, DeliveryStatus.delivered)
    attempt(book, webhook, DeliveryStatus.retrying)
    attempt(book, webhook, DeliveryStatus.dead)
    counts = {s: n for s, n in book.status_counts.items() if n}
    assert counts == {DeliveryStatus.delivered: 1, DeliveryStatus.dead: 1}
    attempt(book, webhook, DeliveryStatus.delivered)  # replayed, and through
    assert book.status_counts[DeliveryStatus.delivered] == 2
    assert sum(book.status_counts.values()) == len(book.deliveries) == 2


def test_the_funnel_counts_every_version_and_each_notices_reach_once() -> None:
    book = TraceBook()
    e1, w1 = planned(book, "D1", "p-1", 1)
    e2, w2 = planned(book, "D1", "p-2", 1)
    planned(book, "D2", "p-1", 1)  # another document: not in D1's funnel
    for did in (e1, w1, e2):
        attempt(book, did, DeliveryStatus.delivered)
    attempt(book, w2, DeliveryStatus.failed)
    ack(book, e1, 10)
    ack(book, w1, 12)  # the same notice again: replaces
    f = book.funnel(book.documents["D1"])
    assert (f.partners_matched, f.notifications, f.deliveries) == (2, 2, 4)
    assert f.by_status == {DeliveryStatus.delivered: 3, DeliveryStatus.failed: 1}
    assert (f.notifications_acknowledged, f.enterprises_reached) == (1, 12)

    summary = document_summary(book, book.documents["D1"])
    assert summary.funnel.deliveries_by_status == {
        "pending": 0,
        "delivered": 3,
        "retrying": 0,
        "failed": 1,
        "disabled": 0,
        "dead": 0,
    }
    assert summary.updated_at == T0 and summary.title is None


def planned_version(book: TraceBook, doc: str, partner: str, version: int) -> list[str]:
    """Notification of ``version`` of ``doc`` to ``partner``, with one webhook delivery."""
    nid = f"ntf_{doc}_v{version}_{partner}"
    dids = [f"dlv_{doc}_v{version}_{partner}_webhook"]
    book.add(
        AuditRecord(
            kind="notification.planned",
            at=T0 + timedelta(seconds=version),
            document_id=doc,
            version=version,
            partner_id=partner,
            notification_id=nid,
            deliveries=dids,
            detail="policy.revised" if version > 1 else "policy.relayed",
        )
    )
    return dids


def test_a_revisions_row_counts_its_own_version_only() -> None:
    book = TraceBook()
    v1 = [planned_version(book, "D1", p, 1)[0] for p in ("p-1", "p-2", "p-3")]
    for did in v1:
        attempt(book, did, DeliveryStatus.delivered)
    ack(book, v1[0], 40)
    ack(book, v1[1], 2)
    # The revision goes to two of them: one gets it, one fails; nobody acknowledges it yet.
    v2 = [planned_version(book, "D1", p, 2)[0] for p in ("p-1", "p-2")]
    attempt(book, v2[0], DeliveryStatus.delivered)
    attempt(book, v2[1], DeliveryStatus.failed)

    summary = document_summary(book, book.documents["D1"])
    assert summary.version == 2
    f = summary.funnel
    assert (f.partners_matched, f.notifications, f.deliveries) == (2, 2, 2)
    assert f.notifications_delivered == 1
    assert f.deliveries_by_status["delivered"] == 1 and f.deliveries_by_status["failed"] == 1
    assert (f.notifications_acknowledged, f.enterprises_reached) == (0, 0)
    # Each version keeps its own funnel beside it.
    by_version = {v.version: v.funnel for v in summary.versions}
    assert sorted(by_version) == [1, 2]
    assert by_version[2] == f
    first = by_version[1]
    assert (first.partners_matched, first.notifications_delivered) == (3, 3)
    assert (first.notifications_acknowledged, first.enterprises_reached) == (2, 42)
    # Every version together is still there for whoever asks for it.
    everything = book.funnel(book.documents["D1"])
    assert (everything.notifications, everything.enterprises_reached) == (5, 42)


def test_failures_are_the_dead_lettered_deliveries_newest_first() -> None:
    book = TraceBook()
    dids = [d for n in range(3) for d in planned(book, f"D{n}", "p-1", n)]
    for i, did in enumerate(dids):
        at = T0 + timedelta(seconds=i)
        status = [DeliveryStatus.failed, DeliveryStatus.dead, DeliveryStatus.retrying][i % 3]
        outcome(book, did, status, at, f"detail {i}")
    got = [d.delivery_id for d, _ in book.recent_failures(10)]
    expected = [d for i, d in enumerate(dids) if i % 3 != 2][::-1]
    assert got == expected
    assert [r.detail for _, r in book.recent_failures(2)] == ["detail 4", "detail 3"]
    # One that got through since (a replay) is no failure any more.
    attempt(book, dids[4], DeliveryStatus.delivered)
    assert dids[4] not in [d.delivery_id for d, _ in book.recent_failures(10)]


def test_failures_kept_are_bounded() -> None:
    book = TraceBook()
    for n in range(FAILURES_KEPT + 50):
        (did, _) = planned(book, "D", f"p-{n}", n)
        attempt(book, did, DeliveryStatus.failed)
    assert len(book.failures) == FAILURES_KEPT
    assert len(book.recent_failures(1000)) == FAILURES_KEPT


def test_documents_come_newest_activity_first() -> None:
    book = TraceBook()
    planned(book, "OLD", "p-1", 1, at=T0)
    planned(book, "NEW", "p-1", 1, at=T0 + timedelta(hours=1))
    planned(book, "MID", "p-1", 1, at=T0 + timedelta(minutes=1))
    book.add(AuditRecord(kind="event.accepted", at=T0 + timedelta(hours=2), document_id="OLD"))
    assert [d.document_id for d in book.recent_documents(10)] == ["OLD", "NEW", "MID"]
    assert [d.document_id for d in book.recent_documents(1)] == ["OLD"]


def test_throughput_is_delivered_per_second_over_the_window_by_channel() -> None:
    book = TraceBook()
    now = T0.timestamp()
    for n in range(30):
        email, webhook = planned(book, "D", f"p-{n}", n)
        attempt(book, webhook, DeliveryStatus.delivered, at=T0 - timedelta(seconds=n))
        attempt(book, email, DeliveryStatus.retrying, at=T0)
    for n in range(6):
        (email, _) = planned(book, "D", f"q-{n}", n)
        attempt(book, email, DeliveryStatus.delivered, at=T0)
    attempt(book, "dlv_long_ago_webhook", DeliveryStatus.delivered, at=T0 - timedelta(hours=1))
    t = throughput(book, now)
    assert t.window_s == 60
    assert t.delivered_per_s_by_channel == {"email": 0.1, "webhook": 0.5}
    assert t.delivered_per_s == 0.6
    assert t.attempts_per_s == 1.1  # the retries count as attempts, not deliveries
    assert t.delivered_per_second[-1] == 7 and sum(t.delivered_per_second) == 36
    assert len(t.delivered_per_second) == 60


def test_rejected_events_are_counted_with_or_without_a_document() -> None:
    book = TraceBook()
    book.add(AuditRecord(kind="event.rejected", at=T0, reason="not_json"))
    book.add(AuditRecord(kind="event.rejected", at=T0, document_id="D9", reason="expired"))
    assert book.events_rejected == 2
    summary = document_summary(book, book.documents["D9"])
    assert summary.last_event == "event.rejected" and summary.rejected_reason == "expired"
    assert summary.funnel.deliveries == 0


def test_a_bare_utc_clock_is_what_the_window_reads() -> None:
    # The records carry aware datetimes; the window reads epoch seconds.
    book = TraceBook()
    (did, _) = planned(book, "D", "p", 1)
    attempt(book, did, DeliveryStatus.delivered, at=datetime.now(UTC))
    assert throughput(book, datetime.now(UTC).timestamp()).delivered_per_s > 0
