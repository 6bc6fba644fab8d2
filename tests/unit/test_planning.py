"""Planning notifications: dedupe, versions, revisions and repeals reaching prior recipients."""

from __future__ import annotations

import pytest

from relay.core.errors import InvalidEvent
from relay.core.matching.reference import match_all, match_partner
from relay.core.models import DocumentSource, NoticeType
from relay.core.planning import DocumentState, plan_event
from tests.unit.factories import NOW, event_model, partner


def plan(ev, state, partners):
    book = {p.id: p for p in partners}
    return plan_event(
        ev, state, match_all(ev.document, partners), lookup=book.get, judge=match_partner, now=NOW
    )


def test_first_publication_notifies_matches_with_one_delivery_per_channel() -> None:
    ps = [
        partner("pa", coverage={"regions": ["310118106"]}),
        partner("pb", coverage={"regions": ["310118107"]}),
    ]
    result = plan(event_model(scope={"regions": ["310118"]}), None, ps)
    assert [n.partner_id for n in result.notifications] == ["pa", "pb"]
    n = result.notifications[0]
    assert n.type == NoticeType.relayed
    assert {d.channel_type for d in n.deliveries} == {"email", "webhook"}
    assert len({d.delivery_id for d in n.deliveries}) == 2
    assert result.state is not None and result.state.recipients == {"pa": 1, "pb": 1}


def test_delivery_ids_are_stable_across_replans() -> None:
    ps = [partner("pa")]
    one = plan(event_model(), None, ps).notifications[0].deliveries
    two = plan(event_model(), None, ps).notifications[0].deliveries
    assert one == two


def test_same_event_id_twice_is_a_duplicate() -> None:
    ps = [partner("pa")]
    first = plan(event_model(), None, ps)
    again = plan(event_model(), first.state, ps)
    assert again.duplicate
    assert again.notifications == []


def test_same_version_under_a_new_event_id_is_refused() -> None:
    ps = [partner("pa")]
    first = plan(event_model(), None, ps)
    with pytest.raises(InvalidEvent) as info:
        plan(event_model(event_id="ev-2"), first.state, ps)
    assert info.value.reason == "stale_version"


def test_revision_reaches_prior_recipients_outside_the_new_scope() -> None:
    a = partner("pa", coverage={"regions": ["310118106"]})
    b = partner("pb", coverage={"regions": ["310118107"]})
    first = plan(event_model(scope={"regions": ["310118"]}), None, [a, b])
    revised = event_model(
        type="document.revised",
        event_id="ev-2",
        version=2,
        scope={"regions": ["310118106"]},
        changes="缩小范围",
    )
    result = plan(revised, first.state, [a, b])
    by_id = {n.partner_id: n for n in result.notifications}
    assert set(by_id) == {"pa", "pb"}
    assert by_id["pa"].type == NoticeType.revised and not by_id["pa"].prior_recipient_only
    assert by_id["pb"].prior_recipient_only
    assert by_id["pb"].previous_version == 1
    assert by_id["pa"].deliveries[0].delivery_id != first.notifications[0].deliveries[0].delivery_id


def test_repeal_reaches_exactly_the_prior_recipients() -> None:
    a = partner("pa", coverage={"regions": ["310118106"]})
    late = partner("late", coverage={"regions": ["310118106"]})
    first = plan(event_model(scope={"regions": ["310118106"]}), None, [a])
    result = plan(event_model(type="document.repealed", event_id="ev-3"), first.state, [a, late])
    assert [n.partner_id for n in result.notifications] == ["pa"]
    assert result.notifications[0].type == NoticeType.repealed
    assert result.state is not None and result.state.repealed


def test_paused_prior_recipient_receives_nothing() -> None:
    a = partner("pa")
    first = plan(event_model(), None, [a])
    paused = a.model_copy(update={"paused": True})
    result = plan(event_model(type="document.repealed", event_id="ev-3"), first.state, [paused])
    assert result.notifications == []


@pytest.mark.parametrize("kind", ["document.revised", "document.repealed"])
def test_revision_or_repeal_of_a_document_never_published_is_refused(kind: str) -> None:
    # Nobody received an original, so there is nothing either could refer to; both say
    # what the operator can do.
    with pytest.raises(InvalidEvent) as info:
        plan(event_model(type=kind, version=2, changes="改"), None, [partner("pa")])
    assert info.value.reason == "unknown_document"
    assert info.value.field == "document.id"
    assert "DOC-1 was never published through the relay" in info.value.message
    assert "publish it as document.published" in info.value.message


def test_nothing_follows_a_repeal() -> None:
    state = DocumentState(document_id="DOC-1", version=1, repealed=True, event_ids=["x"])
    with pytest.raises(InvalidEvent) as info:
        plan(event_model(type="document.revised", event_id="ev-9", version=2), state, [])
    assert info.value.reason == "repealed"


def test_disabled_channels_get_no_delivery() -> None:
    p = partner("pa", channels=[{"type": "email", "to": ["pa@example.org"], "disabled": True}])
    result = plan(event_model(), None, [p])
    assert result.notifications[0].deliveries == []


@pytest.mark.parametrize("version", [1, 2])
def test_a_revision_not_above_the_current_version_is_refused_with_a_reason(version: int) -> None:
    ps = [partner("pa")]
    first = plan(event_model(version=2), None, ps)
    with pytest.raises(InvalidEvent) as info:
        plan(
            event_model(type="document.revised", event_id="ev-2", version=version), first.state, ps
        )
    assert info.value.reason == "stale_version"
    assert info.value.field == "document.version"
    assert f"version {version} of DOC-1 is not newer than the current version 2" in str(
        info.value.message
    )


def test_a_revision_carries_what_changed_against_the_version_before() -> None:
    ps = [partner("pa")]
    source = DocumentSource(partition=0, offset=7)
    v1 = event_model(effective_from="2023-08-01")
    book = {p.id: p for p in ps}
    first = plan_event(
        v1,
        None,
        match_all(v1.document, ps),
        lookup=book.get,
        judge=match_partner,
        now=NOW,
        source=source,
    )
    assert first.state is not None and first.state.source == source
    assert first.notifications[0].changes_computed == []  # a first publication: no diff
    v2 = event_model(
        type="document.revised",
        event_id="ev-2",
        version=2,
        effective_from="2024-02-01",
        interpretation_url="https://example.gov.cn/jd.html",
    )
    result = plan_event(
        v2,
        first.state,
        match_all(v2.document, ps),
        lookup=book.get,
        judge=match_partner,
        now=NOW,
        previous=v1.document,
        source=DocumentSource(partition=0, offset=9),
    )
    n = result.notifications[0]
    assert n.changes_from == 1
    assert [(c.field, c.before, c.after) for c in n.changes_computed] == [
        ("effective_from", "2023年8月1日", "2024年2月1日"),
        ("interpretation_url", None, "https://example.gov.cn/jd.html"),
    ]
    assert result.state is not None and result.state.source == DocumentSource(partition=0, offset=9)


def test_a_repeal_of_the_current_version_gets_its_own_notification_and_delivery_ids() -> None:
    # The repeal names version 1, like the publication: with the same ids its deliveries
    # would be taken for the publication's, already delivered, and never sent.
    ps = [partner("pa")]
    first = plan(event_model(), None, ps)
    repeal = plan(event_model(type="document.repealed", event_id="ev-3"), first.state, ps)
    (published,), (repealed,) = first.notifications, repeal.notifications
    assert repealed.notification_id != published.notification_id
    assert {d.delivery_id for d in repealed.deliveries}.isdisjoint(
        d.delivery_id for d in published.deliveries
    )
    # Replanning the repeal gives the same ids again (stable across replays).
    again = plan(event_model(type="document.repealed", event_id="ev-3"), first.state, ps)
    assert again.notifications[0].deliveries == repealed.deliveries
