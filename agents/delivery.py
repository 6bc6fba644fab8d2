"""Delivery agents (one per channel type) and the retry agent with its due-time ticker."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT
from pydantic import ValidationError

from relay.adapters.compat import on_behalf_of
from relay.core import topics
from relay.core.logs import get_logger
from relay.core.models import (
    AuditRecord,
    DeliveryIntent,
    Document,
    DocumentSource,
    delivery_intents,
)
from relay.core.outcome import Outcome, OutcomeStatus
from relay.runtime import digests
from relay.runtime.deliver import handle, rng, unsendable
from relay.runtime.ledger import table_items
from relay.runtime.producing import INTENT_BUNDLE

if TYPE_CHECKING:
    from relay.runtime.app import Runtime

log = get_logger(__name__)

#: Records taken per batch (a record holds one intent or a bundle of up to INTENT_BUNDLE);
#: the batch is acked only once every send in it has an outcome. So a batch holds at most
#: 500 intents: a rebalance waits for the batch in hand, and that must stay short.
BATCH = 500 // INTENT_BUNDLE
#: Partners served at once within a batch (one partner's deliveries stay in order).
CONCURRENCY = 512
#: The value of a tick record on the retry topic: "look for due retries in this partition".
TICK = b'{"tick":true}'
#: How long a batch waits for this worker to read a document its intents refer to (it was
#: accepted before they were written, so this covers only the follower's last fetch);
#: after that the intent is tried again later, as a retry.
DOCUMENT_WAIT = 2.0


def install(rt: Runtime) -> None:
    for topic in topics.DELIVERY_TOPICS:
        # Named after the topic: email, webhook, chat (the group robots).
        _install_delivery(rt, topic.rsplit(".", 1)[-1], topic)
    _install_retry(rt)
    _install_digests(rt)


def _install_digests(rt: Runtime) -> None:
    """The digest ticker: sends the due digests held in the partitions this worker owns."""
    sending = asyncio.Lock()

    async def digest_ticker() -> None:
        if sending.locked():
            return  # the last tick is still sending
        async with sending:
            try:
                owned = {(tp.topic, tp.partition) for tp in rt.app.consumer.assignment()}
            except Exception:  # no consumer yet, or mid-rebalance
                return
            if rt.app.rebalancing:
                return
            for key, held in digests.due_digests(rt, owned, table_items(rt.digests)):
                try:
                    audit = await digests.send_digest(rt, key, held)
                    await rt.audit.record_many(audit)
                except Exception:
                    log.exception("digest_failed", key=key)

    rt.app.timer(rt.settings.calendar_tick)(digest_ticker)


def _install_delivery(rt: Runtime, channel_type: str, topic: str) -> None:
    # concurrency=1 on purpose: with more, faust-streaming can commit past an in-flight
    # message (#606). The speed comes from sending a batch concurrently instead.
    @rt.app.agent(rt.topic(topic), name=f"relay.deliver.{channel_type}")
    async def deliver_agent(stream: StreamT[bytes]) -> None:
        await rt.registry.wait_ready()
        # First attempts read their document from the accepted-documents topic.
        await rt.accepted.wait_ready()
        # take_events exists on faust's Stream but is missing from its StreamT protocol.
        async for events in stream.take_events(BATCH, within=0.02):  # type: ignore[attr-defined]
            try:
                await _deliver_batch(rt, events, channel_type)
            except Exception:
                # Never let the agent die with a batch in hand: its events would be acked.
                log.exception("delivery_batch_failed", channel_type=channel_type)


async def _deliver_batch(rt: Runtime, events: list[EventT[Any]], channel_type: str) -> None:
    intents = await _complete(rt, events)
    per_partner: dict[str, list[tuple[EventT[Any], DeliveryIntent]]] = defaultdict(list)
    for event, intent in intents:
        per_partner[intent.partner_id].append((event, intent))
    gate = asyncio.Semaphore(CONCURRENCY)
    audit: list[AuditRecord] = []

    async def run(items: list[tuple[EventT[Any], DeliveryIntent]]) -> None:
        async with gate:
            for event, intent in items:
                with on_behalf_of(event):
                    try:
                        await handle(rt, intent, audit, event.message.partition)
                    except Exception as e:
                        log.exception(
                            "delivery_failed_unexpectedly", delivery_id=intent.delivery_id
                        )
                        await rt.parking.dead_letter(
                            intent, "internal_error", f"internal error: {e!r}"
                        )

    await asyncio.gather(*(run(items) for items in per_partner.values()))
    # Notices held for a digest are in the digests table before the ledger says so.
    await rt.digests.flush()
    # The batch's ledger entries (a record per partition) and outcomes (a value per
    # document), written together before it is acked.
    await asyncio.gather(rt.ledger.flush(), rt.audit.record_many(audit))
    if audit:
        outcomes = Counter(str(r.status) for r in audit if r.status is not None)
        log.info("delivery_batch", channel_type=channel_type, intents=len(intents), **outcomes)


async def _complete(
    rt: Runtime, events: list[EventT[Any]]
) -> list[tuple[EventT[Any], DeliveryIntent]]:
    """Parse the batch's intents (a record may hold a bundle) and complete each.

    Malformed records go to the dead letters. A first attempt carries only a reference to
    its document's record in the accepted-documents topic, which every worker follows: one
    lookup serves the whole batch.
    """
    parsed: list[tuple[EventT[Any], DeliveryIntent]] = []
    for event in events:
        try:
            parsed.extend((event, intent) for intent in delivery_intents(event.value))
        except ValidationError as e:
            await rt.parking.dead_letter_raw(
                event, f"malformed delivery intent: {e.errors()[0]['msg']}"
            )
    sources = list({i.ref.source: None for _, i in parsed if i.ref is not None})
    found = await asyncio.gather(*(rt.accepted.document(s, timeout=DOCUMENT_WAIT) for s in sources))
    documents: dict[DocumentSource, Document | None] = dict(zip(sources, found, strict=True))
    complete: list[tuple[EventT[Any], DeliveryIntent]] = []
    for event, intent in parsed:
        ref = intent.ref
        if ref is None:
            complete.append((event, intent))
            continue
        document = documents[ref.source]
        if document is None:
            await _document_missing(rt, intent, ref.source, event.message.partition)
            continue
        try:
            notification = ref.with_document(document)
        except ValueError as e:
            detail = f"malformed delivery intent: {e}"
            await unsendable(rt, intent, event.message.partition, detail)
            continue
        # A fresh object of our own: completed in place (model_copy costs more, per intent).
        intent.notification, intent.ref = notification, None
        complete.append((event, intent))
    return complete


async def _document_missing(
    rt: Runtime, intent: DeliveryIntent, source: DocumentSource, partition: int
) -> None:
    """A reference to a document this worker cannot read (yet)."""
    where = f"{topics.ACCEPTED}[{source.partition}]@{source.offset}"
    if rt.accepted.positions.get(source.partition, 0) > source.offset:
        # Read past it and found no document there: the reference is wrong.
        detail = f"malformed delivery intent: no accepted document at {where}"
        await unsendable(rt, intent, partition, detail)
        return
    # Not read yet (the follower lags behind): try again later, as a retry would.
    detail = f"document at {where} not read yet"
    wait = rt.retry_policy.delay(intent.attempt, Outcome(OutcomeStatus.retry, detail), rng)
    if wait is None:
        detail = f"no accepted document could be read at {where}"
        await unsendable(rt, intent, partition, detail, reason="retries_exhausted")
        return
    log.warning("delivery_document_not_read_yet", delivery_id=intent.delivery_id, source=where)
    await unsendable(rt, intent, partition, detail, wait=wait)


def _install_retry(rt: Runtime) -> None:
    @rt.app.agent(rt.topic(topics.RETRY), name="relay.retry")
    async def retry_agent(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                if event.value == TICK:
                    await _release_due(rt, event.message.partition)
                else:
                    _park(rt, event)
            except Exception:
                log.exception("retry_agent_failed", offset=event.message.offset)

    async def retry_ticker() -> None:
        """Nudge each partition this worker owns that holds a due retry."""
        now = time.time()
        due = {v["p"] for v in list(rt.retries.values()) if v["due"] <= now}
        if not due:
            return
        try:
            owned = {
                tp.partition for tp in rt.app.consumer.assignment() if tp.topic == topics.RETRY
            }
        except Exception:  # no consumer yet, or mid-rebalance
            return
        for p in sorted(due & owned):
            await rt.topic(topics.RETRY).send(value=TICK, partition=p)

    rt.app.timer(rt.settings.retry_tick)(retry_ticker)


def _park(rt: Runtime, event: EventT[Any]) -> None:
    """Keep a retry in the changelogged table until it is due (survives restarts)."""
    try:
        intent = DeliveryIntent.model_validate_json(event.value)
    except ValidationError as e:
        log.error("retry_intent_malformed", error=str(e.errors()[0]["msg"]))
        return
    due = intent.due_at.timestamp() if intent.due_at else time.time()
    rt.retries[intent.delivery_id] = {
        "p": event.message.partition,
        "due": due,
        "key": (event.key or b"").decode(),
        "intent": json.loads(event.value),
    }


async def _release_due(rt: Runtime, partition: int) -> None:
    """Send this partition's due retries back to their delivery topics, earliest first."""
    now = time.time()
    due = sorted(
        (
            (v["due"], k, v)
            for k, v in list(rt.retries.items())
            if v["p"] == partition and v["due"] <= now
        ),
        key=lambda item: (item[0], item[1]),
    )
    if not due:
        return
    by_topic: dict[str, list[DeliveryIntent]] = defaultdict(list)
    for _, _, v in due:
        intent = DeliveryIntent.model_validate(v["intent"])
        by_topic[topics.DELIVER[intent.channel_type]].append(intent)
    for topic, intents in by_topic.items():
        await rt.out.send_intents(topic, intents)  # bundled, each in its partner's partition
    for _, key, _ in due:
        del rt.retries[key]
