"""Delivery agents (one per channel type) and the retry agent with its due-time ticker."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from faust.types import EventT, StreamT
from pydantic import ValidationError

from agents.context import on_behalf_of
from relay import topics
from relay.dispatch import handle
from relay.logs import get_logger
from relay.models import DeliveryIntent

if TYPE_CHECKING:
    from relay.app import Runtime

log = get_logger(__name__)

#: Intents taken per batch; the batch is acked only once every send in it has an outcome.
BATCH = 200
#: Partners served at once within a batch (one partner's deliveries stay in order).
CONCURRENCY = 512
#: The value of a tick record on the retry topic: "look for due retries in this partition".
TICK = b'{"tick":true}'


def install(rt: Runtime) -> None:
    for channel_type, topic in topics.DELIVER.items():
        _install_delivery(rt, channel_type, topic)
    _install_retry(rt)


def _install_delivery(rt: Runtime, channel_type: str, topic: str) -> None:
    # concurrency=1 on purpose: with more, faust-streaming can commit past an in-flight
    # message (#606). The speed comes from sending a batch concurrently instead.
    @rt.app.agent(rt.topic(topic), name=f"relay.deliver.{channel_type}")
    async def deliver_agent(stream: StreamT[bytes]) -> None:
        await rt.registry.wait_ready()
        # take_events exists on faust's Stream but is missing from its StreamT protocol.
        async for events in stream.take_events(BATCH, within=0.02):  # type: ignore[attr-defined]
            try:
                await _deliver_batch(rt, events)
            except Exception:
                # Never let the agent die with a batch in hand: its events would be acked.
                log.exception("delivery_batch_failed", channel_type=channel_type)


async def _deliver_batch(rt: Runtime, events: list[EventT[Any]]) -> None:
    per_partner: dict[bytes, list[tuple[EventT[Any], DeliveryIntent]]] = defaultdict(list)
    for event in events:
        try:
            intent = DeliveryIntent.model_validate_json(event.value)
        except ValidationError as e:
            await rt.dead_letter_raw(event, f"malformed delivery intent: {e.errors()[0]['msg']}")
            continue
        per_partner[event.key or b""].append((event, intent))
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(items: list[tuple[EventT[Any], DeliveryIntent]]) -> None:
        async with gate:
            for event, intent in items:
                with on_behalf_of(event):
                    try:
                        await handle(rt, intent)
                    except Exception as e:
                        log.exception(
                            "delivery_failed_unexpectedly", delivery_id=intent.delivery_id
                        )
                        await rt.dead_letter_raw(event, f"internal error: {e!r}")

    await asyncio.gather(*(run(items) for items in per_partner.values()))


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
    futures = [
        await rt.topic(topics.DELIVER[v["intent"]["channel_type"]]).send(
            key=v["key"].encode(), value=json.dumps(v["intent"]).encode()
        )
        for _, _, v in due
    ]
    await asyncio.gather(*futures)
    for _, key, _ in due:
        del rt.retries[key]
