"""Intake (validate, route rejects) and match (dedupe, match, plan notifications) agents."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT

from relay.core import topics
from relay.core.errors import InvalidEvent
from relay.core.intake import encode_event, parse_event
from relay.core.lifecycle import (
    LifePlan,
    plan_catch_up,
    plan_reminders,
    reminder_due,
    still_valid,
)
from relay.core.logs import get_logger
from relay.core.models import (
    AuditRecord,
    DeliveryIntent,
    DocumentEvent,
    DocumentSource,
    EventType,
    Notification,
    first_attempt,
    first_attempt_ref,
)
from relay.core.planning import DocumentState, plan_event
from relay.runtime import question_digests

if TYPE_CHECKING:
    from relay.runtime.app import Runtime

log = get_logger(__name__)


def install(rt: Runtime) -> None:
    app = rt.app
    install_calendar(rt)
    install_question_digests(rt)

    @app.agent(rt.topic(topics.DOCUMENTS), name="relay.intake")
    async def intake(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await _intake_one(rt, event)

    @app.agent(rt.topic(topics.ACCEPTED), name="relay.match")
    async def match(stream: StreamT[bytes]) -> None:
        await rt.registry.wait_ready()
        # Reminders and catch-ups read their documents from the accepted-documents topic.
        await rt.accepted.wait_ready()
        async for event in stream.events():
            if event.value == topics.CALENDAR_TICK:
                try:
                    await _calendar_tick(rt, event.message.partition)
                except Exception:
                    log.exception("calendar_tick_failed", partition=event.message.partition)
                continue
            source = DocumentSource(partition=event.message.partition, offset=event.message.offset)
            try:
                await _match_one(rt, event.value, source)
            except InvalidEvent as e:
                await rt.parking.reject(e, event.value, event)
            except Exception as e:
                log.exception("match_failed")
                await rt.parking.reject(
                    InvalidEvent("internal_error", f"matching failed: {e!r}"), event.value, event
                )


async def _intake_one(rt: Runtime, event: EventT[Any]) -> None:
    """Validate one published record: on to the accepted topic, or refused with its reason."""
    raw = event.value
    try:
        doc_event = parse_event(raw, today=rt.clock.today(), checks=rt.checks)
        value = encode_event(doc_event)
    except InvalidEvent as e:
        await rt.parking.reject(e, raw, event)
        return
    except Exception as e:  # a bug must not lose the event: park it with the reason
        log.exception("intake_failed")
        await rt.parking.reject(InvalidEvent("internal_error", f"intake failed: {e!r}"), raw, event)
        return
    doc = doc_event.document
    # Re-key by document id: the match agent's per-document state lives there.
    await rt.out.send(topics.ACCEPTED, doc.id, value)
    await rt.audit.record(
        AuditRecord(
            kind="event.accepted",
            at=datetime.now(UTC),
            event_id=doc_event.event_id,
            document_id=doc.id,
            version=doc.version,
            detail=str(doc_event.type),
        )
    )


async def _match_one(rt: Runtime, raw: bytes, source: DocumentSource) -> None:
    """Match one accepted document version (the record at ``source``) and plan its relay."""
    doc_event = DocumentEvent.model_validate_json(raw)
    doc = doc_event.document
    stored = rt.documents.get(doc.id)
    state = DocumentState.model_validate(stored) if stored else None
    previous = None
    if state is not None and state.source is not None and doc_event.type == EventType.revised:
        # The version this revision replaces, to list what changed (none: the notices
        # carry only the publisher's note).
        previous = await rt.accepted.document(state.source)
        if previous is None:
            log.warning("previous_version_unavailable", document_id=doc.id, version=doc.version)
    book = rt.registry.book
    now = datetime.now(UTC)
    started = time.perf_counter()
    plan = plan_event(
        doc_event,
        state,
        book.match(doc),
        lookup=book.get,
        judge=book.judge,
        now=now,
        previous=previous,
        source=source,
        lazy=True,
    )
    planning = time.perf_counter() - started

    def step(kind: str, **fields: Any) -> AuditRecord:
        """An audit record of this document version."""
        return AuditRecord(
            kind=kind,
            at=now,
            event_id=doc_event.event_id,
            document_id=doc.id,
            version=doc.version,
            **fields,
        )

    if plan.duplicate:
        await rt.audit.record(step("event.duplicate", detail="already processed; ignored"))
        return
    # Streamed: each slice of notifications goes out (audit records, then intents) as soon
    # as it is planned, so the delivery agents start on a large fan-out while the rest is
    # still being planned. Nothing is remembered until every slice is out: a crash in
    # between redoes the event in full, under the same notification and delivery ids.
    planned = 0
    delivery_ids: list[str] = []
    for size in _slices():
        started = time.perf_counter()
        chunk = list(itertools.islice(plan.stream, size))
        planning += time.perf_counter() - started
        if not chunk:
            break
        await rt.audit.record_many(
            [
                step(
                    "notification.planned",
                    partner_id=n.partner_id,
                    notification_id=n.notification_id,
                    match=n.match,
                    deliveries=[d.delivery_id for d in n.deliveries],
                    detail=str(n.type),
                )
                for n in chunk
            ]
        )
        await _send_intents(rt, chunk, source)
        planned += len(chunk)
        delivery_ids += [d.delivery_id for n in chunk for d in n.deliveries]
    rt.metrics.match_seconds.observe(planning)
    await rt.audit.record(
        step("document.matched", deliveries=delivery_ids, detail=f"{planned} partners")
    )
    assert plan.state is not None
    # The calendar (reminders, catch-ups) refers to the current version by its record,
    # and keeps the version itself for when that record is gone.
    state = (
        plan.state
        if doc_event.type == EventType.repealed
        else plan.state.model_copy(update={"source": source, "document": doc})
    )
    rt.documents[doc.id] = state.model_dump(mode="json")
    log.info(
        "document_matched",
        document_id=doc.id,
        version=doc.version,
        partners=planned,
    )


#: The first slice of a streamed plan is small, so its deliveries start at once; later ones
#: grow, so a large fan-out is written in few, large broker round trips.
FIRST_SLICE, LARGEST_SLICE = 100, 2000


def _slices() -> Iterator[int]:
    size = FIRST_SLICE
    while True:
        yield size
        size = min(2 * size, LARGEST_SLICE)


async def _send_intents(
    rt: Runtime, notifications: list[Notification], source: DocumentSource
) -> None:
    """The outbox: matching only writes delivery intents; the delivery agents do the I/O.

    Each carries the document by reference: the delivery agents read it from ``source``.
    In JSON-ready form, serialised straight from the notifications' models (10,000
    references and intents would otherwise be built only to be serialised).
    """
    refs = [(n, first_attempt_ref(n, source)) for n in notifications]
    for topic, channel_types in topics.DELIVERY_TOPICS.items():
        await rt.out.send_intents(
            topic,
            [
                first_attempt(ref, d)
                for n, ref in refs
                for d in n.deliveries
                if d.channel_type in channel_types
            ],
        )


async def _calendar_tick(rt: Runtime, partition: int) -> None:
    """Expiry reminders and catch-ups of the documents whose state this partition holds."""
    today = rt.clock.today()
    now = datetime.now(UTC)
    book = rt.registry.book
    pending = rt.catch_ups.take(partition)
    catching_up = [p for pid in sorted(pending) if (p := book.get(pid)) is not None]
    for doc_id, stored in list(rt.documents.items()):
        state = DocumentState.model_validate(stored)
        source = state.source
        if source is None or source.partition != partition:
            continue
        remind = reminder_due(state, today, rt.settings.reminder_days)
        if not remind and not (catching_up and still_valid(state, today)):
            continue
        document = state.document or await rt.accepted.document(source)
        if document is None:  # not read yet: the next tick looks again
            rt.catch_ups.put_back(partition, pending)
            continue
        changed = state
        if remind:
            plan = plan_reminders(changed, document, lookup=book.get, judge=book.judge, now=now)
            await _send_life_plan(rt, plan, "expiry reminder")
            assert plan.state is not None
            changed = plan.state
        if catching_up:
            plan = plan_catch_up(
                changed, document, catching_up, judge=book.judge, today=today, now=now
            )
            if plan.notifications:
                await _send_life_plan(rt, plan, "catch-up")
                assert plan.state is not None
                changed = plan.state
        if changed is not state:
            rt.documents[doc_id] = changed.model_dump(mode="json")


async def _send_life_plan(rt: Runtime, plan: LifePlan, what: str) -> None:
    """The intents and audit records of a calendar plan (as for a matched event)."""
    now = datetime.now(UTC)
    records = [
        AuditRecord(
            kind="notification.planned",
            at=now,
            event_id=plan.event_id,
            document_id=n.document.id,
            version=n.document.version,
            partner_id=n.partner_id,
            notification_id=n.notification_id,
            match=n.match,
            deliveries=[d.delivery_id for d in n.deliveries],
            detail=f"{n.type} ({what})",
        )
        for n in plan.notifications
    ]
    await rt.audit.record_many(records)
    # Whole notifications, not references: the accepted record may be long gone.
    for topic, channel_types in topics.DELIVERY_TOPICS.items():
        await rt.out.send_intents(
            topic,
            [
                DeliveryIntent(
                    delivery_id=d.delivery_id,
                    channel_id=d.channel_id,
                    channel_type=d.channel_type,
                    notification=n,
                )
                for n in plan.notifications
                for d in n.deliveries
                if d.channel_type in channel_types
            ],
        )
    doc = plan.notifications[0].document if plan.notifications else None
    await rt.audit.record(
        AuditRecord(
            kind="document.matched",
            at=now,
            event_id=plan.event_id,
            document_id=doc.id if doc else None,
            version=doc.version if doc else None,
            deliveries=[d.delivery_id for n in plan.notifications for d in n.deliveries],
            detail=f"{what}: {len(plan.notifications)} partners",
        )
    )
    log.info(
        "calendar_planned",
        what=what,
        event_id=plan.event_id,
        partners=len(plan.notifications),
    )


def install_calendar(rt: Runtime) -> None:
    """The calendar ticker: nudges each partition this worker owns that has a reminder due
    or a catch-up pending (the match agent does the work, where the state is)."""

    async def calendar_ticker() -> None:
        try:
            owned = {
                tp.partition for tp in rt.app.consumer.assignment() if tp.topic == topics.ACCEPTED
            }
        except Exception:  # no consumer yet, or mid-rebalance
            return
        if not owned:
            return
        today = rt.clock.today()
        due = set(rt.catch_ups.waiting())
        for stored in list(rt.documents.values()):
            if not stored.get("normative") or not stored.get("expires_on"):
                continue
            state = DocumentState.model_validate(stored)
            if state.source is not None and reminder_due(state, today, rt.settings.reminder_days):
                due.add(state.source.partition)
        for p in sorted(due & owned):
            await rt.topic(topics.ACCEPTED).send(value=topics.CALENDAR_TICK, partition=p)

    rt.app.timer(rt.settings.calendar_tick)(calendar_ticker)


def install_question_digests(rt: Runtime) -> None:
    """The drafting units' daily emails of new questions, from the worker that holds each
    unit's partition of the accepted-documents topic (relay.runtime.question_digests)."""
    sending = asyncio.Lock()

    async def question_digest_ticker() -> None:
        if sending.locked() or not question_digests.ready(rt):
            return
        async with sending:
            try:
                owned = {
                    tp.partition
                    for tp in rt.app.consumer.assignment()
                    if tp.topic == topics.ACCEPTED
                }
            except Exception:  # no consumer yet, or mid-rebalance
                return
            if not owned or rt.app.rebalancing:
                return
            try:
                await question_digests.send_due(rt, owned)
            except Exception:
                log.exception("question_digest_failed")

    rt.app.timer(rt.settings.calendar_tick)(question_digest_ticker)
