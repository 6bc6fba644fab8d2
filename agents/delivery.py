"""Delivery agents: one per channel type, each expanding notifications into sends."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import TYPE_CHECKING

from faust.types import StreamT
from pydantic import ValidationError

from relay import topics
from relay.dispatch import deliver
from relay.logs import get_logger
from relay.models import AuditRecord, Notification, PlannedDelivery

if TYPE_CHECKING:
    from relay.app import Runtime

log = get_logger(__name__)

#: Notifications taken per batch; the batch is acked only once every send has an outcome.
BATCH = 500
#: Partners served at once within a batch (a partner's own deliveries stay in order).
CONCURRENCY = 256


def install(rt: Runtime) -> None:
    for channel_type in ("email", "webhook"):
        _install(rt, channel_type)


def _install(rt: Runtime, channel_type: str) -> None:
    # concurrency=1 on purpose: with more, faust-streaming can commit past an in-flight
    # message (#606); the speed comes from sending a batch concurrently instead.
    @rt.app.agent(rt.topic(topics.NOTIFICATIONS), name=f"relay.deliver.{channel_type}")
    async def deliver_agent(stream: StreamT[bytes]) -> None:
        await rt.registry.wait_ready()
        async for batch in stream.take(BATCH, within=0.02):
            try:
                await _deliver_batch(rt, channel_type, batch)
            except Exception:
                # Never let the agent die with a batch in hand: its events would be acked.
                log.exception("delivery_batch_failed", channel_type=channel_type)


async def _deliver_batch(rt: Runtime, channel_type: str, batch: list[bytes]) -> None:
    per_partner: dict[str, list[tuple[Notification, PlannedDelivery]]] = defaultdict(list)
    for raw in batch:
        try:
            n = Notification.model_validate_json(raw)
        except ValidationError as e:
            log.error("notification_invalid", error=str(e.errors()[0]))
            continue
        for planned in n.deliveries:
            if planned.channel_type == channel_type:
                per_partner[n.partner_id].append((n, planned))
    if not per_partner:
        return
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(items: list[tuple[Notification, PlannedDelivery]]) -> list[AuditRecord]:
        async with gate:
            return [await deliver(rt, n, planned) for n, planned in items]

    results = await asyncio.gather(*(run(items) for items in per_partner.values()))
    futures = [
        await rt.topic(topics.AUDIT).send(
            key=record.document_id.encode() if record.document_id else None,
            value=record.model_dump_json().encode(),
        )
        for records in results
        for record in records
    ]
    await asyncio.gather(*futures)
