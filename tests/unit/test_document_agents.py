"""The intake and match agents' work on one record (relay.agents.documents), against fakes.

No Faust and no broker: the records are plain objects with a value and a place, and the
runtime is a fake that keeps what the agents write (topics, audit, rejections, state).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from relay.agents import documents as agent
from relay.core import planning, topics
from relay.core.errors import InvalidEvent
from relay.core.models import (
    INTENT_JSON,
    AuditRecord,
    DocumentEvent,
    DocumentSource,
    Notification,
    delivery_intents,
)
from relay.core.retry import RateLimiter
from relay.core.settings import Settings
from relay.runtime.app import Runtime
from relay.runtime.calendar import PendingCatchUps
from relay.runtime.metrics import Metrics
from relay.runtime.registry import PartnerBook
from tests.helpers.clock import session_clock
from tests.unit.factories import event, partner

REGION = "310118106"


@dataclass
class FakeOut:
    records: list[tuple[str, str | None, bytes]] = field(default_factory=list)
    intents: dict[str, list[Any]] = field(default_factory=dict)

    async def send(self, topic: str, key: str | None, value: bytes) -> tuple[int, int]:
        self.records.append((topic, key, value))
        return 0, len(self.records) - 1

    async def send_intents(self, topic: str, intents: list[Any]) -> None:
        self.intents.setdefault(topic, []).extend(intents)


@dataclass
class FakeAudit:
    records: list[AuditRecord] = field(default_factory=list)

    async def record(self, r: AuditRecord) -> None:
        self.records.append(r)

    async def record_many(self, rs: list[AuditRecord]) -> None:
        self.records.extend(rs)


@dataclass
class FakeParking:
    rejected: list[InvalidEvent] = field(default_factory=list)

    async def reject(self, err: InvalidEvent, raw: bytes | None, event: Any) -> None:
        self.rejected.append(err)


def fake_runtime(*partners: Any) -> Any:
    book = PartnerBook()
    for p in partners:
        book.apply(p.id, p.model_dump_json().encode())
    counters: Counter[str] = Counter()
    return SimpleNamespace(
        checks=(),
        clock=session_clock(),
        documents={},
        registry=SimpleNamespace(book=book),
        metrics=Metrics(counters, dict),
        out=FakeOut(),
        audit=FakeAudit(),
        parking=FakeParking(),
        limiter=RateLimiter(10),
    )


def record(value: bytes, offset: int = 0) -> Any:
    return SimpleNamespace(
        value=value,
        key=None,
        message=SimpleNamespace(topic=topics.DOCUMENTS, partition=0, offset=offset),
    )


def published(**doc: Any) -> bytes:
    doc.setdefault("scope", {"regions": [REGION]})
    return json.dumps(event(published_on="2026-11-01", **doc), ensure_ascii=False).encode()


async def test_intake_passes_a_valid_event_on_keyed_by_document_and_audits_it() -> None:
    rt = fake_runtime()
    await agent._intake_one(cast(Runtime, rt), record(published(id="DOC-A")))
    [(topic, key, value)] = rt.out.records
    assert (topic, key) == (topics.ACCEPTED, "DOC-A")
    assert json.loads(value)["document"]["id"] == "DOC-A"
    assert [r.kind for r in rt.audit.records] == ["event.accepted"]
    assert rt.parking.rejected == []


async def test_intake_refuses_a_bad_record_with_its_reason_and_writes_nothing_on() -> None:
    rt = fake_runtime()
    for raw, reason in [
        (b"not json", "not_json"),
        (b"[" * 100 + b"]" * 100, "too_deep"),
        (published(version="1"), "invalid_event"),
    ]:
        await agent._intake_one(cast(Runtime, rt), record(raw))
        assert rt.parking.rejected[-1].reason == reason
    assert rt.out.records == []


async def test_match_plans_one_intent_per_channel_and_remembers_the_document() -> None:
    near = partner("near", coverage={"regions": [REGION]})
    far = partner("far", coverage={"regions": ["310115"]})
    rt = fake_runtime(near, far)
    raw = json.dumps(event(id="DOC-M", scope={"regions": [REGION]})).encode()
    source = DocumentSource(partition=2, offset=7)
    await agent._match_one(cast(Runtime, rt), raw, source)

    kinds = [r.kind for r in rt.audit.records]
    assert kinds == ["notification.planned", "document.matched"]
    assert rt.audit.records[0].partner_id == "near"
    # One intent per channel type, each referring to the document by its place.
    for topic in (topics.DELIVER_EMAIL, topics.DELIVER_WEBHOOK):
        [intent] = rt.out.intents[topic]
        parsed = delivery_intents(INTENT_JSON.dump_json(intent, exclude_none=True))[0]
        assert parsed.ref is not None and parsed.ref.source == source
        assert parsed.partner_id == "near"
    assert "DOC-M" in rt.documents
    [count] = [
        s.value
        for s in rt.metrics.match_seconds.collect()[0].samples
        if s.name == "relay_match_seconds_count"
    ]
    assert count == 1  # one matching observed


async def test_match_ignores_the_same_event_a_second_time() -> None:
    rt = fake_runtime(partner("near", coverage={"regions": [REGION]}))
    raw = json.dumps(event(id="DOC-D", scope={"regions": [REGION]})).encode()
    source = DocumentSource(partition=0, offset=1)
    await agent._match_one(cast(Runtime, rt), raw, source)
    planned = sum(len(v) for v in rt.out.intents.values())
    await agent._match_one(cast(Runtime, rt), raw, source)
    assert sum(len(v) for v in rt.out.intents.values()) == planned
    assert rt.audit.records[-1].kind == "event.duplicate"


async def test_a_large_fan_out_sends_its_first_intents_before_the_rest_is_planned(
    monkeypatch: Any,
) -> None:
    """The match step streams: the first slice of intents is on its way while most of the
    notifications are not built yet, and every intent keeps the id an unstreamed plan
    gives it (a crash mid-stream redoes the event under the same ids)."""
    built: list[str] = []

    class CountedNotification(Notification):
        def __init__(self, **data: Any) -> None:
            super().__init__(**data)
            built.append(self.partner_id)

    monkeypatch.setattr(planning, "Notification", CountedNotification)
    partners = [partner(f"p-{i:04d}", coverage={"regions": [REGION]}) for i in range(1000)]
    rt = fake_runtime(*partners)
    sends: list[tuple[int, int]] = []  # (intents in this send, notifications built by then)
    keep = rt.out.send_intents

    async def spy(topic: str, intents: list[Any]) -> None:
        sends.append((len(intents), len(built)))
        await keep(topic, intents)

    rt.out.send_intents = spy
    raw = json.dumps(event(id="DOC-BIG", scope={"regions": [REGION]})).encode()
    source = DocumentSource(partition=1, offset=3)
    await agent._match_one(cast(Runtime, rt), raw, source)

    assert len(built) == 1000
    first_sent, built_by_then = next(s for s in sends if s[0])
    assert 0 < built_by_then < 1000 and first_sent <= built_by_then
    sent = [
        i["delivery_id"]
        for topic in (topics.DELIVER_EMAIL, topics.DELIVER_WEBHOOK)
        for i in rt.out.intents[topic]
    ]
    assert len(sent) == len(set(sent)) == 2000  # two channels each, each once
    whole = planning.plan_event(
        DocumentEvent.model_validate_json(raw),
        None,
        rt.registry.book.match(DocumentEvent.model_validate_json(raw).document),
        lookup=rt.registry.book.get,
        judge=rt.registry.book.judge,
        now=datetime.now(UTC),
        source=source,
    )
    assert set(sent) == {d.delivery_id for n in whole.notifications for d in n.deliveries}
    [matched] = [r for r in rt.audit.records if r.kind == "document.matched"]
    assert set(matched.deliveries) == set(sent)
    assert rt.audit.records[-1] is matched  # the last record: written once all is out
    assert set(rt.documents["DOC-BIG"]["recipients"]) == {p.id for p in partners}


async def test_reminders_and_catch_ups_come_from_the_kept_document_when_its_record_is_gone() -> (
    None
):
    """Years on, the accepted-documents topic may no longer hold the record: the state
    keeps the current version, and the calendar's intents carry it whole."""
    member = partner("p-1", coverage={"regions": [REGION]})
    joiner = partner("p-2", coverage={"regions": [REGION]}, catch_up=True)
    rt = fake_runtime(member)
    rt.settings = Settings(reminder_days=30, clock_offset=None)
    rt.catch_ups = PendingCatchUps(4)

    async def gone(source: DocumentSource, timeout: float = 10.0) -> None:
        return None

    rt.accepted = SimpleNamespace(document=gone)
    expires = (rt.clock.today() + timedelta(days=10)).isoformat()
    await agent._match_one(
        cast(Runtime, rt),
        published(id="DOC-R", normative=True, expires_on=expires),
        DocumentSource(partition=1, offset=5),
    )
    rt.out.intents.clear()
    rt.registry.book.apply(joiner.id, joiner.model_dump_json().encode())
    rt.catch_ups.heard(joiner.id, joiner)
    await agent._calendar_tick(cast(Runtime, rt), 1)
    sent = [i for intents in rt.out.intents.values() for i in intents]
    kinds = sorted((i.notification.type.value, i.partner_id) for i in sent)
    assert kinds == [
        ("policy.expiring", "p-1"),
        ("policy.expiring", "p-1"),
        ("policy.relayed", "p-2"),
        ("policy.relayed", "p-2"),
    ]
    assert all(i.ref is None and i.notification.document.id == "DOC-R" for i in sent)
    assert [
        n.catch_up
        for n in {i.notification.notification_id: i.notification for i in sent}.values()
        if n.partner_id == "p-2"
    ] == [True]
    state = rt.documents["DOC-R"]
    assert state["reminded"] == expires and set(state["recipients"]) == {"p-1", "p-2"}
    # The next tick finds nothing more to do.
    rt.out.intents.clear()
    rt.catch_ups.heard(joiner.id, joiner)
    await agent._calendar_tick(cast(Runtime, rt), 1)
    assert rt.out.intents == {}
